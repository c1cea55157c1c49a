package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API twin of {@link AdditiveQuant#addGramStrip}: one block row of eight doubles is one
 * 512-bit vector or two 256-bit ones. Multiply then add, as the scalar loop does, so both give the
 * same bits. Loaded only when the kernels use vectors of at least 256 bits.
 */
final class AdditiveQuantSimd {
    private AdditiveQuantSimd() {}

    static final VectorSpecies<Double> D = VectorProbe.doubleSpecies();
    static final int DL = D.length();

    static boolean usable() {
        return VectorSupport.bits() >= 256; // 4 or 8 lanes: a block row is whole vectors
    }

    static void addGramStrip(double[] a, int lda, int u, int g, int[] unk, int unkOff, int[] group, int count,
                             double[] h, int ldh, double weight) {
        int up = u * AdditiveQuant.DIM, hp = g * AdditiveQuant.DIM * ldh;
        for (int q = 0; q < count; q++) {
            int uq = unk[unkOff + q];
            if (uq > u) continue;
            int aBase = up * lda + uq * AdditiveQuant.DIM, hBase = hp + group[q] * AdditiveQuant.DIM;
            for (int i = 0; i < AdditiveQuant.DIM; i++) {
                int ar = aBase + i * lda, hr = hBase + i * ldh;
                for (int l = 0; l < AdditiveQuant.DIM; l += DL) {
                    DoubleVector.fromArray(D, h, hr + l).mul(weight).add(DoubleVector.fromArray(D, a, ar + l))
                            .intoArray(a, ar + l);
                }
            }
        }
    }
}
