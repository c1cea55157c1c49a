package casp.kernel;

/**
 * Dequantizing products with a {@link QuantizedMatrix}, never forming the float matrix.
 *
 * <p>Mat-vec: with X_g = sum of x over group g, row r is
 * y_r = sum_g s_{r,g} (sum_{c in g} q_{r,c} x_c - z_{r,g} X_g), so the inner loop is only unpack
 * and one FMA per code; scales and zeros are applied once per group. Wherever the Vector API runs
 * (with FMA) matrices are in the row-lane layout and take {@link RowLaneSimd}; without it they are
 * in the slot layout and take the scalar loop here. Rows are split over the shared pool.
 *
 * <p>Mat-mat: a tile of W (rows x up to 1024 columns) is dequantized into a per-thread buffer
 * (transposed, in the row-lane layout) and multiplied by the GEMM kernel.
 */
final class DequantKernels {
    private DequantKernels() {}

    private static final int SLOT = QuantizedMatrix.SLOT;
    /** Vector path (see {@link VectorSupport}); -Dcasp.vector.bits=0 forces the scalar one. */
    static final boolean VECTOR = VectorSupport.enabled();
    /** Whether the row-lane layout runs here (the Vector API with FMA); every matrix then takes it. */
    static final boolean ROW_LANES_USABLE = VECTOR && RowLaneSimd.usable();

    /** Rows per vector of the row-lane kernels (16 where they do not run: the layout is then unused). */
    static int rowLanes() {
        return ROW_LANES_USABLE ? RowLaneSimd.L : 16;
    }

    /** Below this many tokens, matmul runs the fused mat-vec per token. */
    static final int MATMUL_MIN_TOKENS = 8;
    private static final int TILE_ROWS = 128;
    private static final int TILE_COLS = 1024;
    /** Each thread's dequantized tile of the mat-mat. */
    private static final ThreadLocal<float[]> TILE_BUF = new ThreadLocal<>();

    static void matvec(QuantizedMatrix q, float[] x, int xOff, float[] y, int yOff) {
        if (xOff < 0 || xOff + q.cols > x.length) throw new IllegalArgumentException("x is shorter than cols=" + q.cols);
        if (yOff < 0 || yOff + q.rows > y.length) throw new IllegalArgumentException("y is shorter than rows=" + q.rows);
        MatvecTask task = MATVEC.get();
        float[] xs = x;
        int xo = xOff;
        if (q.perm != null) { // stored order (both kernels read only the first cols entries; RowLaneSimd pads its own copy)
            if (task.permuted.length < q.cols) task.permuted = new float[q.cols];
            xs = task.permuted;
            for (int j = 0; j < q.cols; j++) xs[j] = x[xOff + q.input(j)];
            xo = 0;
        }
        long work = (long) q.rows * q.wordsPerRow;
        int units = q.rowLanes ? (q.rows + QuantizedMatrix.TILE - 1) / QuantizedMatrix.TILE : (q.rows + 3) / 4;
        if (q.rowLanes) {
            if (task.in == null) task.in = new RowLaneSimd.Input(); // not before: RowLaneSimd loads only where vectors run
            RowLaneSimd.input(q, xs, xo, task.in);
        } else {
            if (task.groupSums.length < q.groups) task.groupSums = new float[q.groups];
            for (int g = 0, j = 0; g < q.groups; g++, j += q.groupSize) task.groupSums[g] = Blas1.sum(Math.min(q.groupSize, q.cols - j), xs, xo + j);
        }
        task.set(q, xs, xo, y, yOff, units, work < (1 << 15) ? 1 : (int) Math.min(units, Parallel.threads() * 8L));
        if (task.tasks == 1) task.accept(0);
        else Parallel.forRange(task.tasks, task);
        task.set(null, null, 0, null, 0, 0, 0); // holds no caller's arrays between calls
    }

    /** Each calling thread's mat-vec: its prepared input and the task the threads run, reused by every call. */
    private static final ThreadLocal<MatvecTask> MATVEC = ThreadLocal.withInitial(MatvecTask::new);

    /**
     * One mat-vec split in tasks: task t takes units [units t / tasks, units (t + 1) / tasks), a
     * unit being a tile of the row-lane layout or 4 rows of the slot layout.
     */
    private static final class MatvecTask implements java.util.function.IntConsumer {
        RowLaneSimd.Input in;
        float[] permuted = new float[0], groupSums = new float[0];
        QuantizedMatrix q;
        float[] xs, y;
        int xo, yOff, units, tasks;

        void set(QuantizedMatrix q, float[] xs, int xo, float[] y, int yOff, int units, int tasks) {
            this.q = q;
            this.xs = xs;
            this.xo = xo;
            this.y = y;
            this.yOff = yOff;
            this.units = units;
            this.tasks = tasks;
        }

        @Override
        public void accept(int t) {
            int u0 = (int) ((long) units * t / tasks), u1 = (int) ((long) units * (t + 1) / tasks);
            if (q.rowLanes) {
                RowLaneSimd.tiles(q, u0, u1, in, y, yOff);
            } else {
                for (int r = u0 * 4, r1 = Math.min(q.rows, u1 * 4); r < r1; r++) rowScalar(q, r, xs, xo, groupSums, y, yOff);
            }
        }
    }

    /** Which mat-vec kernel q takes for inputs of ordinary size (benchmarks report it). */
    static String matvecKernel(QuantizedMatrix q) {
        if (q.rowLanes) return "simd-" + q.bits + "bit-row-lanes" + (RowLaneSimd.DENORMALS_FAST ? "" : "-converting");
        return "scalar";
    }

    /**
     * sum_g scale[r, g] * zero[r, g] * X_g: the zero-point part of row r's product, for the scalar
     * kernel.
     */
    static float zeroTerm(QuantizedMatrix q, int r, float[] xg) {
        final float[] side = q.side;
        float z = 0;
        for (int g = 0, o = q.sideIndex(r, 0), zo = q.zeroOffset; g < q.groups; g++, o += 2 * zo) {
            z += side[o] * side[o + zo] * xg[g];
        }
        return z;
    }

    /** Scalar version of one row (no usable vectors); same arithmetic grouping as the vector path. */
    private static void rowScalar(QuantizedMatrix q, int r, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        int mask = (1 << q.bits) - 1;
        float tot = 0;
        for (int g = 0; g < q.groups; g++) {
            int j0 = g * q.groupSize, j1 = Math.min(q.cols, j0 + q.groupSize);
            float acc = 0;
            for (int j = j0; j < j1; j++) {
                acc += ((q.words[q.wordIndex(r, j)] >>> q.shift(j)) & mask) * xs[xo + j];
            }
            tot += q.scale(r, g) * acc;
        }
        y[yOff + r] = tot - zeroTerm(q, r, xg);
    }

    static void matmul(QuantizedMatrix q, float[] x, int xOff, int tokens, float[] y, int yOff) {
        int rows = q.rows, cols = q.cols;
        if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0");
        if (xOff < 0 || xOff + (long) tokens * cols > x.length) throw new IllegalArgumentException("x is shorter than [tokens, cols]");
        if (yOff < 0 || yOff + (long) tokens * rows > y.length) throw new IllegalArgumentException("y is shorter than [tokens, rows]");
        if (tokens < MATMUL_MIN_TOKENS) {
            for (int t = 0; t < tokens; t++) matvec(q, x, xOff + t * cols, y, yOff + t * rows);
            return;
        }
        float[] xs = x;
        int xo = xOff;
        if (q.perm != null) {
            xs = new float[tokens * cols];
            for (int t = 0; t < tokens; t++) {
                for (int j = 0; j < cols; j++) xs[t * cols + j] = x[xOff + t * cols + q.input(j)];
            }
            xo = 0;
        }
        if (q.rowLanes && tokens <= TILED_MAX_TOKENS) {
            matmulByTiles(q, xs, xo, tokens, y, yOff);
            return;
        }
        int tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
        int tasks = Math.min(tiles, Parallel.threads() * 4);
        final float[] xsf = xs;
        final int xof = xo;
        Parallel.forRange(tasks, task -> {
            int tc = Math.min(TILE_COLS, ((cols + SLOT - 1) / SLOT) * SLOT);
            float[] buf = SgemmDriver.buffer(TILE_BUF, TILE_ROWS * tc); // reused: 512 KB per task and call otherwise
            for (int tile = task; tile < tiles; tile += tasks) {
                int r0 = tile * TILE_ROWS, tr = Math.min(TILE_ROWS, rows - r0);
                for (int c0 = 0; c0 < cols; c0 += tc) {
                    int kc = Math.min(tc, cols - c0);
                    if (q.rowLanes) { // W^T tile [kc, TILE_ROWS]: the layout yields L rows of one column per vector
                        RowLaneSimd.dequantizeTileTransposed(q, r0, tr, c0, kc, buf, TILE_ROWS);
                        Gemm.sgemm(false, false, tokens, tr, kc, 1f, xsf, xof + c0, cols, buf, 0, TILE_ROWS,
                                c0 == 0 ? 0f : 1f, y, yOff + r0, rows);
                    } else {
                        dequantizeTile(q, r0, tr, c0, kc, buf, tc);
                        Gemm.sgemm(false, true, tokens, tr, kc, 1f, xsf, xof + c0, cols, buf, 0, tc,
                                c0 == 0 ? 0f : 1f, y, yOff + r0, rows);
                    }
                }
            }
        });
    }

    /** Up to this many tokens the row-lane mat-mat runs {@link #matmulByTiles}, above it the GEMM on dequantized tiles. */
    static final int TILED_MAX_TOKENS = 192;
    /** Columns per dequantized block of {@link #matmulByTiles}: [256, TILE_ROWS] floats (128 KiB, L2). */
    private static final int TILED_COLS = 256;
    private static final ThreadLocal<float[]> EDGE_X = new ThreadLocal<>();
    private static final ThreadLocal<float[]> EDGE_Y = new ThreadLocal<>();

    /**
     * The row-lane mat-mat of a prompt: per tile of TILE_ROWS rows and block of 256 columns, W^T is
     * dequantized ([column][row], as the layout yields it) and the GEMM's register tile runs on it
     * in place, tokens read straight from xs as its broadcast operand and the rows of W^T as its
     * vector operand, adding into y. The SGEMM would pack both: the tokens by scalar moves in every
     * tile, and the dequantized tile once more. Each 2L-row slice of the block (32 KiB) stays in
     * L1 while all tokens pass over it; tiles that stick out (tokens past a multiple of 6, rows past
     * the matrix) go through small edge buffers.
     */
    private static void matmulByTiles(QuantizedMatrix q, float[] xs, int xo, int tokens, float[] y, int yOff) {
        final int rows = q.rows, cols = q.cols, R = TileSimd.ROWS, C = TileSimd.COLS;
        int tiles = (rows + TILE_ROWS - 1) / TILE_ROWS;
        Parallel.forRange(tiles, tile -> {
            int r0 = tile * TILE_ROWS, tr = Math.min(TILE_ROWS, rows - r0);
            float[] wt = SgemmDriver.buffer(TILE_BUF, TILE_ROWS * TILED_COLS);
            float[] ex = SgemmDriver.buffer(EDGE_X, R * TILED_COLS), ey = SgemmDriver.buffer(EDGE_Y, R * C);
            for (int t = 0; t < tokens; t++) java.util.Arrays.fill(y, yOff + t * rows + r0, yOff + t * rows + r0 + tr, 0f);
            for (int c0 = 0; c0 < cols; c0 += TILED_COLS) {
                int kc = Math.min(TILED_COLS, cols - c0);
                RowLaneSimd.dequantizeTileTransposed(q, r0, tr, c0, kc, wt, TILE_ROWS);
                for (int j0 = 0; j0 < tr; j0 += C) {
                    int nj = Math.min(C, tr - j0);
                    for (int t0 = 0; t0 < tokens; t0 += R) {
                        int nt = Math.min(R, tokens - t0);
                        if (nt == R && nj == C) {
                            TileSimd.tile(kc, xs, xo + t0 * cols + c0, cols, wt, j0, TILE_ROWS, y, yOff + t0 * rows + r0 + j0, rows);
                            continue;
                        }
                        for (int i = 0; i < R; i++) {
                            if (i < nt) System.arraycopy(xs, xo + (t0 + i) * cols + c0, ex, i * kc, kc);
                            else java.util.Arrays.fill(ex, i * kc, (i + 1) * kc, 0f);
                        }
                        java.util.Arrays.fill(ey, 0, R * C, 0f);
                        TileSimd.tile(kc, ex, 0, kc, wt, j0, TILE_ROWS, ey, 0, C);
                        for (int i = 0; i < nt; i++) {
                            for (int j = 0; j < nj; j++) y[yOff + (t0 + i) * rows + r0 + j0 + j] += ey[i * C + j];
                        }
                    }
                }
            }
        });
    }

    /**
     * Dequantizes rows [r0, r0 + tr) and stored columns [c0, c0 + kc) (c0 a multiple of 16) into
     * buf [tr, ld]; ld is a multiple of 16 >= kc so whole slots can be stored.
     */
    static void dequantizeTile(QuantizedMatrix q, int r0, int tr, int c0, int kc, float[] buf, int ld) {
        final int mask = (1 << q.bits) - 1;
        for (int i = 0; i < tr; i++) {
            int r = r0 + i, ob = i * ld - c0;
            for (int j = c0; j < c0 + kc; j++) {
                int g = j / q.groupSize;
                buf[ob + j] = q.scale(r, g) * (((q.words[q.wordIndex(r, j)] >>> q.shift(j)) & mask) - q.zero(r, g));
            }
        }
    }
}
