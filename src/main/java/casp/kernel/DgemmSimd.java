package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The double GEMM micro-kernel on the Vector API: a 6 x (2 vectors) tile of C held in 12
 * accumulators (6 rows, 2 x {@link #L} columns), fed by packed panels of A (6 values per k) and B
 * (2 x L values per k). 12 accumulators, 2 B vectors and 1 broadcast fit in the 16 registers of
 * AVX2 and leave room on AVX-512, and one B load serves 6 FMAs. Loaded only when
 * {@link VectorSupport#enabled()}. The float and double twins are kept identical apart from the element type.
 */
final class DgemmSimd {
    private DgemmSimd() {}

    static final VectorSpecies<Double> S = VectorProbe.doubleSpecies();
    /** Lanes per vector. */
    static final int L = S.length();
    /** Rows of the register tile. */
    static final int MR = 6;
    /** Columns of the register tile. */
    static final int NR = 2 * L;

    /**
     * C[0..MR, 0..NR] = beta * C + A_panel * B_panel over kc steps, C at c[co + i * ldc + j]. With
     * beta == 0, C is written without being read (NaN garbage is ignored).
     */
    static void kernel(int kc, double[] ap, int ao, double[] bp, int bo, double[] c, int co, int ldc, double beta) {
        DoubleVector c00 = DoubleVector.zero(S);
        DoubleVector c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        // Indices are linear in p (not separately incremented) so C2 can hoist the range checks.
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * NR, ai = ao + p * MR;
            DoubleVector b0 = DoubleVector.fromArray(S, bp, bi);
            DoubleVector b1 = DoubleVector.fromArray(S, bp, bi + L);
            DoubleVector x;
            x = DoubleVector.broadcast(S, ap[ai + 0]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = DoubleVector.broadcast(S, ap[ai + 1]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = DoubleVector.broadcast(S, ap[ai + 2]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = DoubleVector.broadcast(S, ap[ai + 3]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = DoubleVector.broadcast(S, ap[ai + 4]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = DoubleVector.broadcast(S, ap[ai + 5]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        // Each stored vector passes through EXACT.cast: see EXACT.
        if (beta == 0) {
            ((DoubleVector) EXACT.cast(c00)).intoArray(c, co + 0 * ldc);
            ((DoubleVector) EXACT.cast(c01)).intoArray(c, co + 0 * ldc + L);
            ((DoubleVector) EXACT.cast(c10)).intoArray(c, co + 1 * ldc);
            ((DoubleVector) EXACT.cast(c11)).intoArray(c, co + 1 * ldc + L);
            ((DoubleVector) EXACT.cast(c20)).intoArray(c, co + 2 * ldc);
            ((DoubleVector) EXACT.cast(c21)).intoArray(c, co + 2 * ldc + L);
            ((DoubleVector) EXACT.cast(c30)).intoArray(c, co + 3 * ldc);
            ((DoubleVector) EXACT.cast(c31)).intoArray(c, co + 3 * ldc + L);
            ((DoubleVector) EXACT.cast(c40)).intoArray(c, co + 4 * ldc);
            ((DoubleVector) EXACT.cast(c41)).intoArray(c, co + 4 * ldc + L);
            ((DoubleVector) EXACT.cast(c50)).intoArray(c, co + 5 * ldc);
            ((DoubleVector) EXACT.cast(c51)).intoArray(c, co + 5 * ldc + L);
        } else {
            DoubleVector bv = DoubleVector.broadcast(S, beta); // beta == 1: 1 * C + acc is exactly C + acc
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 0 * ldc), c00))).intoArray(c, co + 0 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 0 * ldc + L), c01))).intoArray(c, co + 0 * ldc + L);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 1 * ldc), c10))).intoArray(c, co + 1 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 1 * ldc + L), c11))).intoArray(c, co + 1 * ldc + L);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 2 * ldc), c20))).intoArray(c, co + 2 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 2 * ldc + L), c21))).intoArray(c, co + 2 * ldc + L);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 3 * ldc), c30))).intoArray(c, co + 3 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 3 * ldc + L), c31))).intoArray(c, co + 3 * ldc + L);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 4 * ldc), c40))).intoArray(c, co + 4 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 4 * ldc + L), c41))).intoArray(c, co + 4 * ldc + L);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 5 * ldc), c50))).intoArray(c, co + 5 * ldc);
            ((DoubleVector) EXACT.cast(bv.fma(DoubleVector.fromArray(S, c, co + 5 * ldc + L), c51))).intoArray(c, co + 5 * ldc + L);
        }
    }

    /**
     * The class of S's vectors, to restate a vector's exact class to C2 before a call on it.
     * C2 (JDK 17) knows the class of an accumulator carried through the loop, or of an fma's
     * result, only from the type profile of the Vector API's shared methods. Once a vector of
     * another shape of the same element type has run anywhere in the JVM (the AQLM and E8P kernels
     * use 256-bit floats), that profile names two classes; with the graph of this large method
     * also past C2's inlining cutoff, the store intrinsic then fails and every tile runs the API's
     * boxing fallback, about twenty times slower. Class.cast with a constant class is an
     * intrinsic that is always inlined and tells C2 the exact class (VectorBoxingTest).
     */
    private static final Class<?> EXACT = S.vectorType();
}
