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

    /** As {@link #of(int, int, short[], boolean)} for values known to be finite (SafeTensorsFile.readHalfs refuses NaN and infinity). */
    public static HalfMatrix ofFinite(int rows, int cols, short[] w, boolean bf16) {
        return of(rows, cols, ShortBuffer.wrap(w), null, bf16, false);
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
     * Rows per tile of the mat-mat by the float32 GEMM (many tokens, or no Vector API): widened
     * into a per-thread buffer, then the GEMM.
     */
    static final int TILE_ROWS = 256;
    private static final ThreadLocal<float[]> TILE_BUF = new ThreadLocal<>();

    /** Columns per block of the mat-mat: a block of packed x (kc x 2L tokens, 32 KiB) stays in L1. */
    static final int MM_COLS = 256;
    /** Rows of W per work item of the mat-mat, widened block by block of columns (96 KiB, L2). */
    static final int MM_ITEM_ROWS = 16 * TileSimd.ROWS;
    /**
     * Up to this many tokens the mat-mat is a mat-vec per token: the kernel computes whole slivers
     * of 2L tokens, and reading W a few times costs less than 2L tokens' worth of FMAs.
     */
    static final int MATVEC_TOKENS = 4;
    /**
     * Above this many tokens the mat-mat widens tiles of W and runs the float32 GEMM, whose packing
     * of W is then shared by enough tokens (fp16 and bf16 on 4096 x 1024, 2 threads, GFLOPS of
     * the kernel here against the GEMM: 150-162 against 106-111 at 64 tokens, 155-159 against
     * 155-156 at 192, 141-152 against 177-181 at 577).
     */
    static final int GEMM_TOKENS = 192;
    private static final ThreadLocal<float[]> PACKED_X = new ThreadLocal<>();
    private static final ThreadLocal<float[]> WIDE_BLOCK = new ThreadLocal<>();
    private static final ThreadLocal<float[]> PARTIALS = new ThreadLocal<>();

    /**
     * Y [tokens, rows] from yOff = X [tokens, cols] from xOff times W^T. A few tokens take the
     * mat-vec, many the float32 GEMM on widened tiles of W. In between (a prompt of up to
     * GEMM_TOKENS): Y^T = W X^T, with the tokens packed column-major (2L per sliver, in the column
     * order of the widened rows) and W widened to float32 a block of rows and columns at a time,
     * read in place by the kernel's broadcasts. The GEMM packs W, its operand with the tokens
     * along the vector lanes, by scalar moves that cost about as much as the FMAs when each weight
     * serves only tens of tokens: on 64 tokens of a 4096 x 4096 bf16 matrix, 2 threads, the GEMM
     * ran at 90-95 GFLOPS, this kernel at 158-171, OpenBLAS's float32 SGEMM at 186. Tokens past
     * the last whole sliver are computed as zeros and dropped.
     */
    public void matmul(float[] x, int xOff, int tokens, float[] y, int yOff) {
        if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0");
        if (xOff < 0 || xOff + (long) tokens * cols > x.length) throw new IllegalArgumentException("x is shorter than [tokens, cols]");
        if (yOff < 0 || yOff + (long) tokens * rows > y.length) throw new IllegalArgumentException("y is shorter than [tokens, rows]");
        if (tokens <= MATVEC_TOKENS) {
            for (int t = 0; t < tokens; t++) matvec(x, xOff + t * cols, y, yOff + t * rows);
            return;
        }
        if (!SIMD || tokens > GEMM_TOKENS) matmulByGemm(x, xOff, tokens, y, yOff);
        else matmulBlock(x, xOff, tokens, y, yOff);
    }

    /**
     * Sliver s of the tokens of x (token t at xOff + t * cols) into xp, column c of token s * NT + j
     * at (s * whole + c) * NT + j, zero for tokens past tb; bf16 columns in the order the widened
     * rows have (per step, the even columns, then the odd ones).
     */
    private void packTokens(float[] x, int xOff, int tb, int s, int whole, float[] xp) {
        final int NT = TileSimd.COLS, step = HalfSimd.BF16_STEP, half = step / 2;
        final int base = s * whole * NT;
        for (int j = 0; j < NT; j++) {
            int t = s * NT + j;
            if (t >= tb) {
                for (int c = 0; c < whole; c++) xp[base + c * NT + j] = 0f;
            } else if (!bf16) {
                int xo = xOff + t * cols;
                for (int c = 0; c < whole; c++) xp[base + c * NT + j] = x[xo + c];
            } else {
                int xo = xOff + t * cols;
                for (int c = 0; c < whole; c += step) {
                    int d = base + c * NT + j, src = xo + c;
                    for (int q = 0; q < half; q++) {
                        xp[d + q * NT] = x[src + 2 * q];
                        xp[d + (half + q) * NT] = x[src + 2 * q + 1];
                    }
                }
            }
        }
    }

    /** Y for tb tokens of x at xOff (token t at t * cols) into y at yOff. */
    private void matmulBlock(float[] x, int xOff, int tb, float[] y, int yOff) {
        final int step = HalfSimd.BF16_STEP, whole = cols / step * step;
        final int kcMax = Math.max(step, Math.min(MM_COLS / step * step, whole));
        final int R = TileSimd.ROWS, NT = TileSimd.COLS;
        final int slivers = (tb + NT - 1) / NT;
        // x packed: sliver s, column c, token j at (s * whole + c) * NT + j.
        float[] xp = SgemmDriver.buffer(PACKED_X, slivers * whole * NT);
        Parallel.forRange(slivers, s -> packTokens(x, xOff, tb, s, whole, xp));
        final int items = (rows + MM_ITEM_ROWS - 1) / MM_ITEM_ROWS;
        Parallel.forRange(items, item -> {
            int r0 = item * MM_ITEM_ROWS, nr = Math.min(MM_ITEM_ROWS, rows - r0);
            int tiles = (nr + R - 1) / R, nrPad = tiles * R;
            float[] wf = SgemmDriver.buffer(WIDE_BLOCK, MM_ITEM_ROWS * kcMax);
            // Y^T of the item by tiles: row i * R + ii, token s * NT + j at ((i * slivers + s) * R + ii) * NT + j.
            float[] part = SgemmDriver.buffer(PARTIALS, MM_ITEM_ROWS * slivers * NT);
            java.util.Arrays.fill(part, 0, nrPad * slivers * NT, 0f);
            for (int k0 = 0; k0 < whole; k0 += kcMax) {
                int kc = Math.min(kcMax, whole - k0);
                HalfSimd.widenBlock(this, r0, nrPad, k0, kc, wf);
                for (int s = 0; s < slivers; s++) {
                    int xo = (s * whole + k0) * NT;
                    for (int i = 0; i < tiles; i++) {
                        // W's six rows broadcast from the widened block, the tokens as the vector operand
                        TileSimd.tile(kc, wf, i * R * kc, kc, xp, xo, NT, part, (i * slivers + s) * R * NT, NT);
                    }
                }
            }
            for (int r = 0; r < nr; r++) {
                int rowBase = (r / R * slivers * R + r % R) * NT; // token t of row r at rowBase + (t / NT) * R * NT + t % NT
                for (int s = 0, t = 0; s < slivers; s++) {
                    for (int j = 0, p = rowBase + s * R * NT; j < NT && t < tb; j++, t++, p++) {
                        float v = part[p];
                        if (whole < cols) v += rowScalar(r0 + r, x, xOff + t * cols, whole, cols);
                        y[yOff + t * rows + r0 + r] = v;
                    }
                }
            }
        });
    }

    /** The mat-mat without the Vector API: 256-row tiles widened to float32, then the GEMM. */
    private void matmulByGemm(float[] x, int xOff, int tokens, float[] y, int yOff) {
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
