package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API loop of {@link AqlmCodebookMatvec}, loaded only if VectorSupport.enabled(). A codeword
 * is 8 (or 16) floats: the species is at most 256 bits wide, so an 8-float codeword is one load at
 * 256 and 512 bits (the 512-bit machines run 256-bit vectors here) and two at 128.
 */
final class AqlmCodebookSimd {
    private AqlmCodebookSimd() {}

    private static final VectorSpecies<Float> S =
            VectorSpecies.of(float.class, VectorShape.forBitSize(Math.min(256, VectorSupport.bits())));
    private static final int L = S.length();

    static boolean usable() {
        return L >= 4;
    }

    static int lanes() {
        return L;
    }

    /** Rows [r0, r1); gsize is a multiple of the lane count. */
    static void rows(char[] codes, int r0, int r1, int groups, int m, float[] codebooks, int k, int gsize,
                     float[] scales, float[] x, int xOff, float[] y, int yOff) {
        for (int r = r0; r < r1; r++) {
            FloatVector acc = FloatVector.zero(S);
            int base = r * groups * m;
            for (int g = 0; g < groups; g++) {
                int xg = xOff + g * gsize;
                for (int b = 0; b < m; b++) {
                    int cw = (b * k + codes[base + g * m + b]) * gsize;
                    for (int i = 0; i < gsize; i += L)
                        acc = FloatVector.fromArray(S, codebooks, cw + i).fma(FloatVector.fromArray(S, x, xg + i), acc);
                }
            }
            y[yOff + r] = scales[r] * acc.reduceLanes(VectorOperators.ADD);
        }
    }
}
