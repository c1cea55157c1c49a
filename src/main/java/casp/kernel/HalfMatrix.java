package casp.kernel;

/**
 * A dense weight matrix W [rows, cols] kept in 16 bits per weight, fp16 or bf16 as the model file
 * stores it (half the memory and the memory traffic of float32), with the products of a linear
 * layer: y = W x for one row ({@link #matvec}), Y = X W^T for many ({@link #matmul}). The values
 * are widened to float exactly inside the kernels, so the results are those of the float32 matrix
 * up to the order of the sums.
 *
 * <p>fp16 infinities and NaN are refused by {@link #of} (the vector widening maps them to large
 * finite values); a caller keeps such a tensor in float32.
 */
public final class HalfMatrix {
    /** Vector path (see {@link VectorSupport}); the kernels are in {@link HalfSimd}. */
    private static final boolean SIMD = VectorSupport.enabled();

    final int rows, cols;
    /** Row-major [rows, cols] raw 16-bit values. */
    final short[] w;
    /** bf16 (the top half of a float) rather than IEEE fp16. */
    final boolean bf16;

    private HalfMatrix(int rows, int cols, short[] w, boolean bf16) {
        this.rows = rows;
        this.cols = cols;
        this.w = w;
        this.bf16 = bf16;
    }

    /**
     * Wraps (does not copy) w [rows * cols] of fp16 (bf16 false) or bf16 values; null when an fp16
     * value is infinite or NaN.
     */
    public static HalfMatrix of(int rows, int cols, short[] w, boolean bf16) {
        if (rows <= 0 || cols <= 0 || (long) rows * cols != w.length) {
            throw new IllegalArgumentException("w has " + w.length + " values, expected " + rows + "x" + cols);
        }
        if (!bf16) {
            for (short h : w) if ((h & 0x7C00) == 0x7C00) return null;
        }
        return new HalfMatrix(rows, cols, w, bf16);
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** Row r widened into dst[off, off + cols) (an embedding lookup). */
    public void row(int r, float[] dst, int off) {
        if (r < 0 || r >= rows) throw new IllegalArgumentException("row " + r + " outside [0, " + rows + ")");
        widen(r * cols, cols, dst, off);
    }

    /** The whole matrix widened to a new float32 array [rows * cols] (for code that needs float weights, e.g. a quantizer). */
    public float[] toFloats() {
        float[] out = new float[Math.multiplyExact(rows, cols)];
        widen(0, out.length, out, 0);
        return out;
    }

    /** W[r, c] as a float. */
    public float get(int r, int c) {
        short h = w[r * cols + c];
        return bf16 ? Float.intBitsToFloat(h << 16) : Fp16.toFloat(h);
    }

    /** y[yOff + r] = sum_c W[r, c] x[xOff + c] for every row r. */
    public void matvec(float[] x, int xOff, float[] y, int yOff) {
        if (xOff < 0 || xOff + cols > x.length) throw new IllegalArgumentException("x is shorter than cols=" + cols);
        if (yOff < 0 || yOff + rows > y.length) throw new IllegalArgumentException("y is shorter than rows=" + rows);
        int quads = (rows + 3) / 4;
        int tasks = (long) rows * cols < (1 << 16) ? 1 : (int) Math.min(quads, Parallel.threads() * 8L);
        MatvecTask task = MATVEC.get();
        task.set(this, x, xOff, y, yOff, quads, tasks);
        if (tasks == 1) task.accept(0);
        else Parallel.forRange(tasks, task);
        task.set(null, null, 0, null, 0, 0, 1); // holds no caller's arrays between calls
    }

    /** Each calling thread's mat-vec task, reused by every call so that a decode step allocates nothing. */
    private static final ThreadLocal<MatvecTask> MATVEC = ThreadLocal.withInitial(MatvecTask::new);

    /** One mat-vec split in tasks of whole quads of rows. */
    private static final class MatvecTask implements java.util.function.IntConsumer {
        HalfMatrix w;
        float[] x, y;
        int xOff, yOff, quads, tasks;

        void set(HalfMatrix w, float[] x, int xOff, float[] y, int yOff, int quads, int tasks) {
            this.w = w;
            this.x = x;
            this.xOff = xOff;
            this.y = y;
            this.yOff = yOff;
            this.quads = quads;
            this.tasks = tasks;
        }

        @Override
        public void accept(int t) {
            int r0 = (int) ((long) quads * t / tasks) * 4, r1 = Math.min(w.rows, (int) ((long) quads * (t + 1) / tasks) * 4);
            if (SIMD) HalfSimd.rows(w, r0, r1, x, xOff, y, yOff);
            else for (int r = r0; r < r1; r++) y[yOff + r] = w.rowScalar(r, x, xOff, 0, w.cols);
        }
    }

    /** sum over columns [c0, c1) of W[r, c] x[xOff + c]. */
    float rowScalar(int r, float[] x, int xOff, int c0, int c1) {
        float s = 0;
        for (int c = c0; c < c1; c++) s += get(r, c) * x[xOff + c];
        return s;
    }

    /** Rows per tile of the mat-mat: widened into a per-thread buffer, then the GEMM. */
    private static final int TILE_ROWS = 64;
    private static final ThreadLocal<float[]> TILE_BUF = new ThreadLocal<>();

    /** Y [tokens, rows] from yOff = X [tokens, cols] from xOff times W^T; one token takes the mat-vec. */
    public void matmul(float[] x, int xOff, int tokens, float[] y, int yOff) {
        if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0");
        if (xOff < 0 || xOff + (long) tokens * cols > x.length) throw new IllegalArgumentException("x is shorter than [tokens, cols]");
        if (yOff < 0 || yOff + (long) tokens * rows > y.length) throw new IllegalArgumentException("y is shorter than [tokens, rows]");
        if (tokens == 1) {
            matvec(x, xOff, y, yOff);
            return;
        }
        int tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
        int tasks = Math.min(tiles, Parallel.threads() * 4);
        Parallel.forRange(tasks, task -> {
            float[] buf = SgemmDriver.buffer(TILE_BUF, TILE_ROWS * cols);
            for (int tile = task; tile < tiles; tile += tasks) {
                int r0 = tile * TILE_ROWS, tr = Math.min(TILE_ROWS, rows - r0);
                widen(r0 * cols, tr * cols, buf, 0);
                Gemm.sgemm(false, true, tokens, tr, cols, 1f, x, xOff, cols, buf, 0, cols, 0f, y, yOff + r0, rows);
            }
        });
    }

    /** dst[off, off + n) = the floats of w[from, from + n). */
    private void widen(int from, int n, float[] dst, int off) {
        int i = 0;
        if (SIMD) i = HalfSimd.widen(this, from, n, dst, off);
        for (; i < n; i++) {
            short h = w[from + i];
            dst[off + i] = bf16 ? Float.intBitsToFloat(h << 16) : Fp16.toFloat(h);
        }
    }
}
