package casp.kernel;

/**
 * A weight W [rows, cols] stored the QuIP# way (ALGORITHMS.md section 7): E8P12 codes of the
 * incoherence-processed, scaled weight. With P the zero padding of the inputs to cols' (a multiple of
 * 8 with a {@link Hadamard} transform) and of the outputs to rows', T_in / T_out those transforms
 * and S_in / S_out the diagonal random-sign matrices,
 * <pre>
 *   W_hat = P_out^T S_out T_out^T (scale * C) T_in S_in P_in
 * </pre>
 * where C [rows', cols'] holds the decoded codewords, 8 consecutive columns per 16-bit code (at 3 and
 * 4 bits plus the second stage's codewords divided by its scale, {@link E8pResidual}). So
 * y = W_hat x is: pad x, multiply by the signs, transform (T_in), multiply by scale * C,
 * transform back (T_out^T), multiply by the signs, drop the padding rows.
 *
 * <p>Arrays are held as given (no copies); treat them as read-only.
 */
public final class E8pMatrix {
    public final int rows, cols, paddedRows, paddedCols;
    /** Codes [paddedRows, paddedCols / 8], row-major, 16 bits each (read with {@code & 0xffff}). */
    public final short[] codes;
    /** Signs of the inputs [paddedCols] and outputs [paddedRows], each +1 or -1. */
    public final byte[] signIn, signOut;
    public final float scale;
    /** The second stage (NONE at 2 bits). */
    public final E8pResidual residual;
    /** Its codes, like {@link #codes} (E81B: 0..255), or null at 2 bits. */
    public final short[] codes2;
    private final Incoherence incoherence;

    /** A 2-bit matrix (E8P12 alone). */
    public E8pMatrix(int rows, int cols, int paddedRows, int paddedCols, short[] codes, byte[] signIn, byte[] signOut,
                     float scale) {
        this(rows, cols, paddedRows, paddedCols, codes, signIn, signOut, scale, E8pResidual.NONE, null);
    }

    /** A matrix with a residual stage (codes2 null for {@link E8pResidual#NONE}). */
    public E8pMatrix(int rows, int cols, int paddedRows, int paddedCols, short[] codes, byte[] signIn, byte[] signOut,
                     float scale, E8pResidual residual, short[] codes2) {
        if (rows < 1 || cols < 1 || paddedRows < rows || paddedCols < cols || paddedCols % E8p.DIM != 0)
            throw new IllegalArgumentException("bad shape " + rows + " x " + cols + " padded to " + paddedRows + " x " + paddedCols
                    + " (padded columns must be a multiple of 8)");
        if (codes.length != (long) paddedRows * (paddedCols / E8p.DIM) || signIn.length != paddedCols || signOut.length != paddedRows)
            throw new IllegalArgumentException("codes/signs do not match " + paddedRows + " x " + paddedCols);
        for (byte s : signIn) if (s != 1 && s != -1) throw new IllegalArgumentException("input sign " + s + " is not +-1");
        for (byte s : signOut) if (s != 1 && s != -1) throw new IllegalArgumentException("output sign " + s + " is not +-1");
        if (!Float.isFinite(scale)) throw new IllegalArgumentException("scale " + scale);
        if ((residual == E8pResidual.NONE) != (codes2 == null) || codes2 != null && codes2.length != codes.length)
            throw new IllegalArgumentException("second-stage codes do not match the residual stage " + residual);
        if (residual == E8pResidual.E81B) {
            for (short c : codes2) if (c < 0 || c > 255) throw new IllegalArgumentException("E81B code " + c + " outside 0..255");
        }
        this.rows = rows;
        this.cols = cols;
        this.paddedRows = paddedRows;
        this.paddedCols = paddedCols;
        this.codes = codes;
        this.signIn = signIn;
        this.signOut = signOut;
        this.scale = scale;
        this.residual = residual;
        this.codes2 = codes2;
        this.incoherence = new Incoherence(rows, cols, paddedRows, paddedCols, signIn, signOut); // throws without transforms
    }

    /** scale * C, [paddedRows, paddedCols] row-major: the weight in the transformed basis. */
    public float[] decodeScaled() {
        float[] c = new float[paddedRows * paddedCols];
        for (int i = 0; i < codes.length; i++) E8p.decode(codes[i] & 0xffff, c, i * E8p.DIM);
        if (codes2 != null) addSecondStage(c, 0, codes2, 0, codes2.length);
        VectorOps.scale(c, 0, c.length, scale);
        return c;
    }

    /** c[off + 8 i ...] += codeword(codes2[from + i]) / s for count codes. */
    private void addSecondStage(float[] c, int off, short[] c2, int from, int count) {
        float[] q = new float[E8p.DIM];
        float inv = 1 / residual.scale;
        for (int i = 0; i < count; i++) {
            residual.decode(c2[from + i] & 0xffff, q, 0);
            Blas1.axpy(E8p.DIM, inv, q, 0, c, off + i * E8p.DIM);
        }
    }

    /** W_hat [rows, cols] row-major (the transforms undone: see the class comment). */
    public float[] dequantize() {
        return incoherence.inverse(decodeScaled());
    }

    /** The transforms of this matrix. */
    public Incoherence incoherence() { return incoherence; }

    /** Reusable buffers of {@link #multiply}; one per caller (not thread-safe). */
    public static final class Scratch {
        float[] xt = new float[0], yt = new float[0], yt2 = new float[0], dense = new float[0];
        /** The decode-and-dot pass as a task of the threads, reused by every call. */
        final DecodeDot decodeDot = new DecodeDot();
    }

    /** yt[r] = scale * C[r, :] . xt for the rows of task t (y2: scratch [m] at 3/4 bits). */
    private static final class DecodeDot implements java.util.function.IntConsumer {
        E8pMatrix c;
        float[] xt, yt, y2;
        int tasks;

        void set(E8pMatrix c, float[] xt, float[] yt, float[] y2, int tasks) {
            this.c = c;
            this.xt = xt;
            this.yt = yt;
            this.y2 = y2;
            this.tasks = tasks;
        }

        @Override
        public void accept(int t) {
            c.decodeDotRows(t, tasks, xt, yt, y2);
        }
    }

    /** Rows of C decoded at once by the batched product. */
    private static final int TILE = 64;
    /** The decode-and-dot pass on 8-lane vectors (one codeword each) when the machine has 256-bit vectors. */
    private static final boolean SIMD = VectorSupport.bits() >= 256;

    /**
     * Y[batch, rows] = X[batch, cols] W_hat^T on the codes, W_hat never formed: each input row is
     * signed and transformed (x~ = T_in S_in P_in x), multiplied by scale * C, transformed back
     * (S_out T_out^T) and cut to rows. One row: a decode-and-dot pass over the codes; more rows:
     * C decoded {@value #TILE} rows at a time and multiplied with a GEMM ({@link #decodeTiles}).
     */
    public void multiply(float[] x, int xOff, int batch, float[] y, int yOff, Scratch s) {
        int m = paddedRows, n = paddedCols;
        if (s.xt.length < batch * n) s.xt = new float[batch * n];
        if (s.yt.length < batch * m) s.yt = new float[batch * m];
        float[] xt = s.xt, yt = s.yt;
        for (int b = 0; b < batch; b++) {
            System.arraycopy(x, xOff + b * cols, xt, b * n, cols);
            java.util.Arrays.fill(xt, b * n + cols, (b + 1) * n, 0f);
            Incoherence.multiplySigns(xt, b * n, signIn);
        }
        Hadamard hIn = incoherence.inputTransform(), hOut = incoherence.outputTransform();
        if (batch == 1) hIn.apply(xt, 0, false, denseScratch(s, hIn));
        else hIn.applyRows(xt, 0, batch, false);
        if (batch == 1) {
            if (codes2 != null && s.yt2.length < m) s.yt2 = new float[m];
            decodeDot(xt, yt, s.yt2, s.decodeDot);
        } else {
            decodeTiles(xt, batch, yt);
        }
        if (batch == 1) hOut.apply(yt, 0, true, denseScratch(s, hOut));
        else hOut.applyRows(yt, 0, batch, true);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) y[yOff + b * rows + r] = signOut[r] < 0 ? -yt[b * m + r] : yt[b * m + r];
        }
    }

    /** Each thread's tile of decoded rows for {@link #decodeTiles}. */
    private static final ThreadLocal<float[]> TILE_BUFFER = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * yt[batch, paddedRows] = scale * xt C^T, C decoded {@value #TILE} rows at a time: each tile is
     * a task of the threads that copies its codewords from the codebook and multiplies them with
     * a GEMM of its own (run inline: a loop inside forRange does not split again), so decoding is
     * not a serial step between parallel GEMMs.
     */
    private void decodeTiles(float[] xt, int batch, float[] yt) {
        int m = paddedRows, n = paddedCols, per = n / E8p.DIM;
        float[] table = E8p.table();
        int tiles = (m + TILE - 1) / TILE;
        java.util.function.IntConsumer tile = t -> {
            int r0 = t * TILE, rn = Math.min(TILE, m - r0);
            float[] buf = TILE_BUFFER.get();
            if (buf.length < TILE * n) TILE_BUFFER.set(buf = new float[TILE * n]);
            for (int i = 0; i < rn * per; i++) System.arraycopy(table, (codes[r0 * per + i] & 0xffff) * E8p.DIM, buf, i * E8p.DIM, E8p.DIM);
            if (codes2 != null) addSecondStage(buf, 0, codes2, r0 * per, rn * per);
            // Yt[:, r0:r0+rn] = scale * Xt C[r0:r0+rn, :]^T
            Gemm.sgemm(false, true, batch, rn, n, scale, xt, 0, n, buf, 0, n, 0f, yt, r0, m);
        };
        // fewer tiles than threads: one tile after another, each GEMM split over the threads
        if (tiles >= Parallel.threads()) Parallel.forRange(tiles, tile);
        else for (int t = 0; t < tiles; t++) tile.accept(t);
    }

    private static float[] denseScratch(Scratch s, Hadamard h) {
        if (s.dense.length < h.length()) s.dense = new float[h.length()];
        return s.dense;
    }

    /** yt[r] = scale * C[r, :] . xt for every padded row, in parallel over row blocks (y2: scratch [m] at 3/4 bits). */
    private void decodeDot(float[] xt, float[] yt, float[] y2, DecodeDot task) {
        int tasks = (int) Math.max(1, Math.min(Parallel.threads() * 4L, (long) paddedRows * (paddedCols / E8p.DIM) / 16384));
        if (tasks == 1) {
            decodeDotRows(0, 1, xt, yt, y2);
            return;
        }
        task.set(this, xt, yt, y2, tasks);
        Parallel.forRange(tasks, task);
        task.set(null, null, null, null, 1); // holds no caller's arrays between calls
    }

    /** The rows of task t of tasks in {@link #decodeDot}. */
    private void decodeDotRows(int t, int tasks, float[] xt, float[] yt, float[] y2) {
        int m = paddedRows, per = paddedCols / E8p.DIM;
        float[] table2 = codes2 == null ? null : residual.table();
        float inv = codes2 == null ? 0 : 1 / residual.scale;
        int r0 = (int) ((long) m * t / tasks), r1 = (int) ((long) m * (t + 1) / tasks);
        if (SIMD) E8pSimd.decodeDotQuarters(E8p.tableQuarters(), codes, per, xt, r0, r1, yt, 0);
        else dots(E8p.table(), codes, per, xt, r0, r1, yt);
        if (codes2 != null) {
            dots(table2, codes2, per, xt, r0, r1, y2);
            for (int r = r0; r < r1; r++) yt[r] += y2[r] * inv;
        }
        for (int r = r0; r < r1; r++) yt[r] *= scale;
    }

    /** y[r] = sum_j table[c[r, j]] . x[8 j, 8 j + 8) for rows r0 .. r1. */
    private static void dots(float[] table, short[] c, int per, float[] x, int r0, int r1, float[] y) {
        if (SIMD) {
            E8pSimd.decodeDot(table, c, per, x, r0, r1, y, 0);
            return;
        }
        for (int r = r0; r < r1; r++) {
            float acc = 0;
            for (int j = 0; j < per; j++) {
                int o = (c[r * per + j] & 0xffff) * E8p.DIM, xo = j * E8p.DIM;
                for (int i = 0; i < E8p.DIM; i++) acc += table[o + i] * x[xo + i];
            }
            y[r] = acc;
        }
    }

    /**
     * Stored bits per original weight: 16 per code, one per sign, 32 for the scale, and at 3/4 bits
     * 8/16 per second-stage code and 32 for its scale, over rows * cols (the padding's codes count
     * against the real weights).
     */
    public double effectiveBits() {
        double b = 16.0 * codes.length + paddedRows + paddedCols + 32;
        if (codes2 != null) b += (double) residual.codeBits * codes2.length + 32;
        return b / ((double) rows * cols);
    }
}
