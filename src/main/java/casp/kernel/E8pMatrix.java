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

    /**
     * Stored bits per original weight: 16 per code, one per sign, 32 for the scale, over rows * cols
     * (the padding's codes count against the real weights).
     */
    public double effectiveBits() {
        return (16.0 * codes.length + paddedRows + paddedCols + 32) / ((double) rows * cols);
    }
}
