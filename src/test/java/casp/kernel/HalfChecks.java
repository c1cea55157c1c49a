package casp.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * Checks of {@link HalfMatrix} against a double product of its values widened one by one, for
 * {@link VectorWidths} to run at every vector width (the widening is done by vector bit tricks there,
 * by {@link Fp16#toFloat} in the scalar code). Every matrix is checked twice: on a Java array, and
 * outside the heap as a memory-mapped tensor is (read through the per-thread row tile).
 */
public final class HalfChecks {
    private HalfChecks() {}

    static final String[] ALL = {"matvecFp16AndBf16", "matmulFp16AndBf16", "widensEveryFp16Value"};

    /** Random fp16 / bf16 patterns: normal values of either sign, with zeros and fp16 subnormals mixed in. */
    static short[] randomHalfs(int n, boolean bf16, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        short[] w = new short[n];
        for (int i = 0; i < n; i++) {
            float v = (float) r.nextGaussian() * 0.05f;
            int kind = r.nextInt(20);
            if (kind == 0) v = 0;
            if (kind == 1 && !bf16) v = (float) (r.nextDouble() * 6e-5 - 3e-5); // fp16 subnormals
            w[i] = bf16 ? (short) (Float.floatToRawIntBits(v) >>> 16) : Fp16.fromFloat(v);
        }
        return w;
    }

    /** Where a checked matrix keeps its values, and how the kernels read them there. */
    enum Storage { HEAP, OFF_HEAP_VECTOR_LOADS, OFF_HEAP_ROW_COPIES }

    /** w as a matrix on the heap, or copied outside it the way a memory-mapped tensor is held. */
    static HalfMatrix matrix(int rows, int cols, short[] w, boolean bf16, Storage storage) {
        if (storage == Storage.HEAP) return HalfMatrix.of(rows, cols, w, bf16);
        ByteBuffer direct = ByteBuffer.allocateDirect(w.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        direct.asShortBuffer().put(w);
        direct.order(ByteOrder.BIG_ENDIAN); // the matrix must not depend on the caller's byte order
        HalfMatrix m = HalfMatrix.ofBytes(rows, cols, direct, bf16, storage == Storage.OFF_HEAP_VECTOR_LOADS, true);
        check(m == null || m.isMapped(), "a direct buffer must be read as off-heap values");
        return m;
    }

    public static void matvecFp16AndBf16() {
        for (Storage storage : Storage.values()) {
            for (boolean bf16 : new boolean[] {false, true}) {
                for (int rows : new int[] {1, 3, 7, 17, 33}) {
                    // 5000 columns: four rows exceed the row tile's first size
                    for (int cols : new int[] {1, 7, 16, 17, 33, 129, 1000, 5000}) {
                        HalfMatrix m = matrix(rows, cols, randomHalfs(rows * cols, bf16, rows * 131L + cols), bf16, storage);
                        float[] x = vector(cols + 2, cols);
                        float[] y = new float[rows + 1];
                        m.matvec(x, 2, y, 1);
                        compare(m, x, 2, 1, y, 1, storage + " " + (bf16 ? "bf16 " : "fp16 ") + rows + "x" + cols);
                    }
                }
            }
        }
    }

    public static void matmulFp16AndBf16() {
        for (Storage storage : Storage.values()) {
            for (boolean bf16 : new boolean[] {false, true}) {
                // each path: mat-vecs, the kernel (33: a ragged sliver of tokens), the GEMM
                for (int tokens : new int[] {2, HalfMatrix.MATVEC_TOKENS + 1, 9, 33, HalfMatrix.GEMM_TOKENS, HalfMatrix.GEMM_TOKENS + 1}) {
                    // past one tile (vector path: one work item) with a ragged last one; 77 and 300
                    // columns: columns past the last whole step; 300: several blocks of columns
                    for (int[] shape : new int[][] {{HalfMatrix.TILE_ROWS + 45, 77}, {HalfMatrix.MM_ITEM_ROWS + 5, 300}, {70, 300}}) {
                        int rows = shape[0], cols = shape[1];
                        HalfMatrix m = matrix(rows, cols, randomHalfs(rows * cols, bf16, tokens), bf16, storage);
                        float[] x = vector(tokens * cols + 3, tokens);
                        float[] y = new float[tokens * rows + 1];
                        m.matmul(x, 3, tokens, y, 1);
                        compare(m, x, 3, tokens, y, 1, storage + " " + (bf16 ? "bf16" : "fp16")
                                + " matmul " + rows + "x" + cols + " tokens=" + tokens);
                    }
                }
            }
        }
    }

    /**
     * Every finite fp16 pattern widened by the kernels equals {@link Fp16#toFloat} (zeros up to
     * sign): the 63,488 patterns as a [992, 64] matrix, read back column by column through the
     * mat-vec (one-hot x) and all at once through the mat-mat (X the identity); inf and NaN are refused.
     */
    public static void widensEveryFp16Value() {
        int cols = 64, rows = (0x10000 - 2 * 0x400) / cols; // every pattern but exponent 31
        short[] all = new short[rows * cols];
        int n = 0;
        for (int h = 0; h < 0x10000; h++) if ((h & 0x7C00) != 0x7C00) all[n++] = (short) h;
        for (Storage storage : Storage.values()) widensEveryFp16Value(matrix(rows, cols, all, false, storage), all);
        check(HalfMatrix.of(1, 2, new short[] {0x3C00, 0x7C00}, false) == null, "fp16 infinity must be refused");
        check(matrix(1, 2, new short[] {0x3C00, 0x7C00}, false, Storage.OFF_HEAP_ROW_COPIES) == null, "off-heap fp16 infinity must be refused");
        check(HalfMatrix.of(1, 2, new short[] {0x3C00, (short) 0xFE00}, false) == null, "fp16 NaN must be refused");
        check(HalfMatrix.of(1, 2, new short[] {0x3F80, 0x7F80}, true) != null, "bf16 values are kept as they are");
    }

    private static void widensEveryFp16Value(HalfMatrix m, short[] all) {
        int rows = m.rows(), cols = m.cols();
        float[] y = new float[rows];
        for (int c = 0; c < cols; c++) {
            float[] oneHot = new float[cols];
            oneHot[c] = 1f;
            m.matvec(oneHot, 0, y, 0);
            for (int r = 0; r < rows; r++) same(all[r * cols + c], y[r], "matvec");
        }
        float[] identity = new float[cols * cols];
        for (int c = 0; c < cols; c++) identity[c * cols + c] = 1f;
        float[] yt = new float[cols * rows];
        m.matmul(identity, 0, cols, yt, 0);
        for (int t = 0; t < cols; t++) {
            for (int r = 0; r < rows; r++) same(all[r * cols + t], yt[t * rows + r], "matmul");
        }
    }

    private static void same(short h, float got, String path) {
        float expect = Fp16.toFloat(h);
        check(Float.floatToRawIntBits(expect) == Float.floatToRawIntBits(got) || expect == 0 && got == 0,
                path + ": fp16 pattern " + Integer.toHexString(h & 0xFFFF) + " widened to " + got + ", expected " + expect);
    }

    private static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    private static void compare(HalfMatrix m, float[] x, int xOff, int tokens, float[] y, int yOff, String what) {
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < m.rows(); r++) {
                double s = 0, mag = 0;
                for (int c = 0; c < m.cols(); c++) {
                    double p = (double) m.get(r, c) * x[xOff + t * m.cols() + c];
                    s += p;
                    mag += Math.abs(p);
                }
                double got = y[yOff + t * m.rows() + r];
                if (!(Math.abs(got - s) <= 1e-5 * mag + 1e-7)) {
                    throw new AssertionError(what + " token " + t + " row " + r + ": expected " + s + ", got " + got);
                }
            }
        }
    }

    private static float[] vector(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (2 * r.nextDouble() - 1);
        return x;
    }
}
