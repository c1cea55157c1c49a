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
        // One store path for all betas keeps the method small enough for C2 to inline every
        // vector operation (with beta == 1, C * 1 + acc is exactly C + acc).
        if (beta != 0) {
            DoubleVector bv = DoubleVector.broadcast(S, beta);
            c00 = DoubleVector.fromArray(S, c, co + 0 * ldc).fma(bv, c00);
            c01 = DoubleVector.fromArray(S, c, co + 0 * ldc + L).fma(bv, c01);
            c10 = DoubleVector.fromArray(S, c, co + 1 * ldc).fma(bv, c10);
            c11 = DoubleVector.fromArray(S, c, co + 1 * ldc + L).fma(bv, c11);
            c20 = DoubleVector.fromArray(S, c, co + 2 * ldc).fma(bv, c20);
            c21 = DoubleVector.fromArray(S, c, co + 2 * ldc + L).fma(bv, c21);
            c30 = DoubleVector.fromArray(S, c, co + 3 * ldc).fma(bv, c30);
            c31 = DoubleVector.fromArray(S, c, co + 3 * ldc + L).fma(bv, c31);
            c40 = DoubleVector.fromArray(S, c, co + 4 * ldc).fma(bv, c40);
            c41 = DoubleVector.fromArray(S, c, co + 4 * ldc + L).fma(bv, c41);
            c50 = DoubleVector.fromArray(S, c, co + 5 * ldc).fma(bv, c50);
            c51 = DoubleVector.fromArray(S, c, co + 5 * ldc + L).fma(bv, c51);
        }
        c00.intoArray(c, co + 0 * ldc);
        c01.intoArray(c, co + 0 * ldc + L);
        c10.intoArray(c, co + 1 * ldc);
        c11.intoArray(c, co + 1 * ldc + L);
        c20.intoArray(c, co + 2 * ldc);
        c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc);
        c31.intoArray(c, co + 3 * ldc + L);
        c40.intoArray(c, co + 4 * ldc);
        c41.intoArray(c, co + 4 * ldc + L);
        c50.intoArray(c, co + 5 * ldc);
        c51.intoArray(c, co + 5 * ldc + L);
    }
}
