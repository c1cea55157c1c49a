package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float GEMM's register tile (6 rows x 2 vectors, as in {@link SgemmSimd}) over operands read
 * where they lie instead of packed slivers: the broadcast operand a by rows of stride lda, the
 * vector operand b by rows of stride ldb. The 16-bit and the quantized mat-mat of a prompt use it
 * so that no weight is ever transposed by scalar moves: each weight serves only as many FMAs as
 * there are tokens, and packing would cost about as much as the multiplication. Loaded only if
 * VectorSupport.enabled().
 */
final class TileSimd {
    private TileSimd() {}

    private static final VectorSpecies<Float> FS = VectorProbe.floatSpecies();
    private static final int L = FS.length();
    /** Rows of the tile (of a). */
    static final int ROWS = 6;
    /** Columns of the tile (of b): two vectors. */
    static final int COLS = 2 * L;
    /** The exact class of FS's vectors (see SgemmSimd.EXACT). */
    private static final Class<?> EXACT = FS.vectorType();

    /**
     * c[co + i * ldc + j] += sum over p below kc of a[ao + i * lda + p] * b[bo + p * ldb + j], for
     * i below ROWS and j below COLS. The sums start from zero and are added to c at the end, so a
     * caller that splits the columns in blocks sums them in blocks (the rounding grows with the
     * block plus the number of blocks, not with all columns).
     */
    static void tile(int kc, float[] a, int ao, int lda, float[] b, int bo, int ldb, float[] c, int co, int ldc) {
        FloatVector c00 = FloatVector.zero(FS);
        FloatVector c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        // Indices are linear in p so C2 can hoist the range checks.
        for (int p = 0; p < kc; p++) {
            int bi = bo + p * ldb, ai = ao + p;
            FloatVector b0 = FloatVector.fromArray(FS, b, bi);
            FloatVector b1 = FloatVector.fromArray(FS, b, bi + L);
            FloatVector x;
            x = FloatVector.broadcast(FS, a[ai]);           c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(FS, a[ai + lda]);     c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(FS, a[ai + 2 * lda]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(FS, a[ai + 3 * lda]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(FS, a[ai + 4 * lda]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(FS, a[ai + 5 * lda]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        // Stored through EXACT.cast: the accumulators' class is otherwise known to C2 only from
        // shared type profiles (see SgemmSimd.EXACT).
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co).add(c00))).intoArray(c, co);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + L).add(c01))).intoArray(c, co + L);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + ldc).add(c10))).intoArray(c, co + ldc);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + ldc + L).add(c11))).intoArray(c, co + ldc + L);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 2 * ldc).add(c20))).intoArray(c, co + 2 * ldc);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 2 * ldc + L).add(c21))).intoArray(c, co + 2 * ldc + L);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 3 * ldc).add(c30))).intoArray(c, co + 3 * ldc);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 3 * ldc + L).add(c31))).intoArray(c, co + 3 * ldc + L);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 4 * ldc).add(c40))).intoArray(c, co + 4 * ldc);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 4 * ldc + L).add(c41))).intoArray(c, co + 4 * ldc + L);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 5 * ldc).add(c50))).intoArray(c, co + 5 * ldc);
        ((FloatVector) EXACT.cast(FloatVector.fromArray(FS, c, co + 5 * ldc + L).add(c51))).intoArray(c, co + 5 * ldc + L);
    }
}
