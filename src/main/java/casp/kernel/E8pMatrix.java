package casp.kernel;

/**
 * A weight W [rows, cols] stored the QuIP# way (ALGORITHMS.md section 7): E8P12 codes of the
 * incoherence-processed, scaled weight. With P the zero padding of the inputs to cols' (a multiple of
 * 8 with a {@link Hadamard} transform) and of the outputs to rows', T_in / T_out those transforms
 * and S_in / S_out the diagonal random-sign matrices,
 * <pre>
 *   W_hat = P_out^T S_out T_out^T (scale * C) T_in S_in P_in
 * </pre>
 * where C [rows', cols'] holds the decoded codewords, 8 consecutive columns per 16-bit code. So
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
    private final Incoherence incoherence;

    public E8pMatrix(int rows, int cols, int paddedRows, int paddedCols, short[] codes, byte[] signIn, byte[] signOut,
                     float scale) {
        if (rows < 1 || cols < 1 || paddedRows < rows || paddedCols < cols || paddedCols % E8p.DIM != 0)
            throw new IllegalArgumentException("bad shape " + rows + " x " + cols + " padded to " + paddedRows + " x " + paddedCols
                    + " (padded columns must be a multiple of 8)");
        if (codes.length != (long) paddedRows * (paddedCols / E8p.DIM) || signIn.length != paddedCols || signOut.length != paddedRows)
            throw new IllegalArgumentException("codes/signs do not match " + paddedRows + " x " + paddedCols);
        for (byte s : signIn) if (s != 1 && s != -1) throw new IllegalArgumentException("input sign " + s + " is not +-1");
        for (byte s : signOut) if (s != 1 && s != -1) throw new IllegalArgumentException("output sign " + s + " is not +-1");
        if (!Float.isFinite(scale)) throw new IllegalArgumentException("scale " + scale);
        this.rows = rows;
        this.cols = cols;
        this.paddedRows = paddedRows;
        this.paddedCols = paddedCols;
        this.codes = codes;
        this.signIn = signIn;
        this.signOut = signOut;
        this.scale = scale;
        this.incoherence = new Incoherence(rows, cols, paddedRows, paddedCols, signIn, signOut); // throws without transforms
    }

    /** scale * C, [paddedRows, paddedCols] row-major: the weight in the transformed basis. */
    public float[] decodeScaled() {
        float[] c = new float[paddedRows * paddedCols];
        for (int i = 0; i < codes.length; i++) E8p.decode(codes[i] & 0xffff, c, i * E8p.DIM);
        VectorOps.scale(c, 0, c.length, scale);
        return c;
    }

    /** W_hat [rows, cols] row-major (the transforms undone: see the class comment). */
    public float[] dequantize() {
        return incoherence.inverse(decodeScaled());
    }

    /** The transforms of this matrix. */
    public Incoherence incoherence() { return incoherence; }

    /** Reusable buffers of {@link #multiply}; one per caller (not thread-safe). */
    public static final class Scratch {
        float[] xt = new float[0], yt = new float[0], tile = new float[0], dense = new float[0];
    }

    /** Rows of C decoded at once by the batched product. */
    private static final int TILE = 64;
    /** The decode-and-dot pass on 8-lane vectors (one codeword each) when the machine has 256-bit vectors. */
    private static final boolean SIMD = VectorSupport.bits() >= 256;

    /**
     * Y[batch, rows] = X[batch, cols] W_hat^T on the codes, W_hat never formed: each input row is
     * signed and transformed (x~ = T_in S_in P_in x), multiplied by scale * C, transformed back
     * (S_out T_out^T) and cut to rows. One row: a decode-and-dot pass over the codes; more rows:
     * C decoded {@value #TILE} rows at a time into scratch and multiplied with a GEMM.
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
            decodeDot(xt, yt);
        } else {
            if (s.tile.length < TILE * n) s.tile = new float[TILE * n];
            int per = n / E8p.DIM;
            for (int r0 = 0; r0 < m; r0 += TILE) {
                int rn = Math.min(TILE, m - r0);
                for (int i = 0; i < rn * per; i++) E8p.decode(codes[r0 * per + i] & 0xffff, s.tile, i * E8p.DIM);
                // Yt[:, r0:r0+rn] = scale * Xt C[r0:r0+rn, :]^T
                Gemm.sgemm(false, true, batch, rn, n, scale, xt, 0, n, s.tile, 0, n, 0f, yt, r0, m);
            }
        }
        if (batch == 1) hOut.apply(yt, 0, true, denseScratch(s, hOut));
        else hOut.applyRows(yt, 0, batch, true);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rows; r++) y[yOff + b * rows + r] = signOut[r] < 0 ? -yt[b * m + r] : yt[b * m + r];
        }
    }

    private static float[] denseScratch(Scratch s, Hadamard h) {
        if (s.dense.length < h.length()) s.dense = new float[h.length()];
        return s.dense;
    }

    /** yt[r] = scale * C[r, :] . xt for every padded row, in parallel over row blocks. */
    private void decodeDot(float[] xt, float[] yt) {
        int m = paddedRows, per = paddedCols / E8p.DIM;
        float[] table = E8p.table();
        int tasks = (int) Math.max(1, Math.min(Parallel.threads() * 4L, (long) m * per / 16384));
        Parallel.forRange(tasks, t -> {
            int r0 = (int) ((long) m * t / tasks), r1 = (int) ((long) m * (t + 1) / tasks);
            if (SIMD) {
                E8pSimd.decodeDot(table, codes, per, xt, r0, r1, yt, 0);
            } else {
                for (int r = r0; r < r1; r++) {
                    float acc = 0;
                    for (int j = 0; j < per; j++) {
                        int c = (codes[r * per + j] & 0xffff) * E8p.DIM, xo = j * E8p.DIM;
                        for (int i = 0; i < E8p.DIM; i++) acc += table[c + i] * xt[xo + i];
                    }
                    yt[r] = acc;
                }
            }
            for (int r = r0; r < r1; r++) yt[r] *= scale;
        });
    }

    /**
     * Stored bits per original weight: 16 per code, one per sign, 32 for the scale, over rows * cols
     * (the padding's codes count against the real weights).
     */
    public double effectiveBits() {
        return (16.0 * codes.length + paddedRows + paddedCols + 32) / ((double) rows * cols);
    }
}
