package casp.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;

/**
 * A dense weight matrix W [rows, cols] kept in 16 bits per weight, fp16 or bf16 as the model file
 * stores it (half the memory and the memory traffic of float32), with the products of a linear
 * layer: y = W x for one row ({@link #matvec}), Y = X W^T for many ({@link #matmul}). The values
 * are widened to float exactly inside the kernels, so the results are those of the float32 matrix
 * up to the order of the sums.
 *
 * <p>The values live in a Java array, or outside the heap in a read-only memory map of the model
 * file, so a model's weights are used in place without a copy on the heap. The kernels load a
 * mapped matrix with the Vector API's buffer loads where the JDK has them (JDK 17 to 19), and
 * elsewhere through a per-thread copy of a few rows (about half the speed).
 *
 * <p>fp16 infinities and NaN are refused by {@link #of} (the vector widening maps them to large
 * finite values); a caller keeps such a tensor in float32.
 */
public final class HalfMatrix {
    /** Vector path (see {@link VectorSupport}); the kernels are in {@link HalfSimd}. */
    private static final boolean SIMD = VectorSupport.enabled();

    final int rows, cols;
    /** Row-major [rows, cols] raw 16-bit values, read by absolute index only. */
    final ShortBuffer w;
    /**
     * The same values as little-endian bytes, for the kernels' vector loads, when they are outside
     * the heap and the Vector API can load from a buffer; null otherwise (an array, or rows copied).
     */
    final ByteBuffer vectorBytes;
    /** bf16 (the top half of a float) rather than IEEE fp16. */
    final boolean bf16;

    private HalfMatrix(int rows, int cols, ShortBuffer w, ByteBuffer vectorBytes, boolean bf16) {
        this.rows = rows;
        this.cols = cols;
        this.w = w;
        this.vectorBytes = vectorBytes;
        this.bf16 = bf16;
    }

    /**
     * Wraps (does not copy) w [rows * cols] of fp16 (bf16 false) or bf16 values; null when an fp16
     * value is infinite or NaN.
     */
    public static HalfMatrix of(int rows, int cols, short[] w, boolean bf16) {
        return of(rows, cols, ShortBuffer.wrap(w), null, bf16, true);
    }

    /**
     * Wraps (does not copy) rows * cols fp16 (bf16 false) or bf16 values stored little-endian in
     * bytes[0, 2 * rows * cols), for example a memory-mapped tensor; null when an fp16 value is
     * infinite or NaN. The buffer's position, limit and byte order are not used.
     */
    public static HalfMatrix of(int rows, int cols, ByteBuffer bytes, boolean bf16) {
        return ofBytes(rows, cols, bytes, bf16, HalfSimd.BUFFER_LOADS, true);
    }

    /**
     * As {@link #of(int, int, ByteBuffer, boolean)} for values known to be finite (for example from
     * SafeTensorsFile.mapHalfs, which refuses NaN and infinity): no second pass over them.
     */
    public static HalfMatrix ofFinite(int rows, int cols, ByteBuffer bytes, boolean bf16) {
        return ofBytes(rows, cols, bytes, bf16, HalfSimd.BUFFER_LOADS, false);
    }

    /** As {@link #of(int, int, ByteBuffer, boolean)}; vectorLoads false makes the kernels copy rows even where buffer loads exist (tests). */
    static HalfMatrix ofBytes(int rows, int cols, ByteBuffer bytes, boolean bf16, boolean vectorLoads, boolean checkFp16) {
        ByteBuffer le = bytes.duplicate().clear().order(ByteOrder.LITTLE_ENDIAN);
        boolean direct = !le.hasArray();
        return of(rows, cols, le.asShortBuffer(), direct && vectorLoads && SIMD ? le : null, bf16, checkFp16);
    }

    private static HalfMatrix of(int rows, int cols, ShortBuffer w, ByteBuffer vectorBytes, boolean bf16, boolean checkFp16) {
        if (rows <= 0 || cols <= 0 || (long) rows * cols != w.capacity()) {
            throw new IllegalArgumentException("w has " + w.capacity() + " values, expected " + rows + "x" + cols);
        }
        if (!bf16 && checkFp16 && Finite.firstNonFinite(w, false) >= 0) return null;
        return new HalfMatrix(rows, cols, w, vectorBytes, bf16);
    }

    /** Whether the values are outside the Java heap (a memory map). */
    public boolean isMapped() {
        return !w.hasArray();
    }

    /** Per-thread copy of a few rows of a mapped matrix. */
    private static final ThreadLocal<short[]> ROW_TILE = new ThreadLocal<>();

    /**
     * The values [from, from + n) as an array to read from index {@link #arrayBase}: the backing
     * array itself, or (outside the heap) a copy in the calling thread's tile.
     */
    short[] readable(int from, int n) {
        if (w.hasArray()) return w.array();
        short[] tile = ROW_TILE.get();
        if (tile == null || tile.length < n) {
            tile = new short[Math.max(n, 1 << 14)];
            ROW_TILE.set(tile);
        }
        w.get(from, tile, 0, n);
        return tile;
    }

    /** Where value from sits in the array {@link #readable}(from, n) returned. */
    int arrayBase(int from) {
        return w.hasArray() ? w.arrayOffset() + from : 0;
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
        return get(r * cols + c);
    }

    private float get(int index) {
        short h = w.get(index);
        return bf16 ? Float.intBitsToFloat(h << 16) : Fp16.toFloat(h);
    }

    /** y[yOff + r] = sum_c W[r, c] x[xOff + c] for every row r. */
    public void matvec(float[] x, int xOff, float[] y, int yOff) {
        if (xOff < 0 || xOff + cols > x.length) throw new IllegalArgumentException("x is shorter than cols=" + cols);
        if (yOff < 0 || yOff + rows > y.length) throw new IllegalArgumentException("y is shorter than rows=" + rows);
        int blocks = (rows + MATVEC_ROWS - 1) / MATVEC_ROWS;
        int tasks = (long) rows * cols < (1 << 16) ? 1 : (int) Math.min(blocks, Parallel.threads() * 8L);
        MatvecTask task = MATVEC.get();
        if (SIMD && bf16) task.xs = HalfSimd.splitPairs(x, xOff, cols, task.xs);
        task.set(this, x, xOff, y, yOff, blocks, tasks);
        if (tasks == 1) task.accept(0);
        else Parallel.forRange(tasks, task);
        task.set(null, null, 0, null, 0, 0, 1); // holds no caller's arrays between calls
    }

    /** Each calling thread's mat-vec task, reused by every call so that a decode step allocates nothing. */
    private static final ThreadLocal<MatvecTask> MATVEC = ThreadLocal.withInitial(MatvecTask::new);

    /** Rows per unit of a mat-vec's split: a multiple of the kernels' row blocks (4 bf16, 2 fp16). */
    private static final int MATVEC_ROWS = 4;

    /** One mat-vec split in tasks of whole blocks of MATVEC_ROWS rows. */
    private static final class MatvecTask implements java.util.function.IntConsumer {
        HalfMatrix w;
        float[] x, y;
        /** x reordered for the bf16 kernel (HalfSimd.splitPairs); kept between calls. */
        float[] xs;
        int xOff, yOff, blocks, tasks;

        void set(HalfMatrix w, float[] x, int xOff, float[] y, int yOff, int blocks, int tasks) {
            this.w = w;
            this.x = x;
            this.xOff = xOff;
            this.y = y;
            this.yOff = yOff;
            this.blocks = blocks;
            this.tasks = tasks;
        }

        @Override
        public void accept(int t) {
            int r0 = (int) ((long) blocks * t / tasks) * MATVEC_ROWS;
            int r1 = Math.min(w.rows, (int) ((long) blocks * (t + 1) / tasks) * MATVEC_ROWS);
            if (SIMD) HalfSimd.rows(w, r0, r1, x, xOff, xs, y, yOff);
            else for (int r = r0; r < r1; r++) y[yOff + r] = w.rowScalar(r, x, xOff, 0, w.cols);
        }
    }

    /** sum over columns [c0, c1) of W[r, c] x[xOff + c]. */
    float rowScalar(int r, float[] x, int xOff, int c0, int c1) {
        float s = 0;
        for (int c = c0; c < c1; c++) s += get(r, c) * x[xOff + c];
        return s;
    }

    /**
     * Rows per tile of the mat-mat: widened into a per-thread buffer, then the GEMM. Each tile's
     * GEMM packs X again, so tiles are large (256 against 64: prefill of 64 tokens ~8% faster on
     * 7B shapes); the buffer is 256 x cols floats per thread (11 MB at cols 11008).
     */
    static final int TILE_ROWS = 256;
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

    /** Values widened per step of {@link #widen}: the size of the tile a mapped matrix is read through. */
    private static final int WIDEN_STEP = 1 << 14;

    /** dst[off, off + n) = the floats of w[from, from + n). */
    private void widen(int from, int n, float[] dst, int off) {
        for (int done = 0; done < n; done += WIDEN_STEP) {
            int len = Math.min(WIDEN_STEP, n - done);
            int o = off + done, i = 0;
            if (vectorBytes != null) {
                i = HalfSimd.widen(vectorBytes, from + done, len, bf16, dst, o);
                for (; i < len; i++) dst[o + i] = get(from + done + i);
                continue;
            }
            short[] a = readable(from + done, len);
            int base = arrayBase(from + done);
            if (SIMD) i = HalfSimd.widen(a, base, len, bf16, dst, o);
            for (; i < len; i++) {
                short h = a[base + i];
                dst[o + i] = bf16 ? Float.intBitsToFloat(h << 16) : Fp16.toFloat(h);
            }
        }
    }
}
