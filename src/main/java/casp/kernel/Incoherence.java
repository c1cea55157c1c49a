package casp.kernel;

/**
 * QuIP#'s incoherence processing of a weight W [rows, cols] (ALGORITHMS.md section 7.1), with
 * zero padding to lengths that have a {@link Hadamard} transform: with P_in / P_out the padding
 * of the inputs to n >= cols and of the outputs to m >= rows, S the diagonal sign matrices and T
 * the orthogonal transforms,
 * <pre>
 *   W~ = T_out S_out P_out W P_in^T S_in T_in^T      [m, n]
 *   x~ = T_in S_in P_in x,  so  W~ x~ = T_out S_out P_out (W x)
 *   H~ = T_in S_in P_in H P_in^T S_in T_in^T         [n, n]
 * </pre>
 * and back, W = P_out^T S_out T_out^T W~ T_in S_in P_in. Immutable and thread-safe.
 */
public final class Incoherence {
    public final int rows, cols, m, n;
    private final byte[] sIn, sOut;
    private final Hadamard tIn, tOut;

    /** sIn [n] and sOut [m] are +-1 (held, not copied); m and n must have Hadamard transforms. */
    public Incoherence(int rows, int cols, int m, int n, byte[] sIn, byte[] sOut) {
        if (rows < 1 || cols < 1 || m < rows || n < cols || sIn.length != n || sOut.length != m)
            throw new IllegalArgumentException("bad incoherence shape " + rows + " x " + cols + " -> " + m + " x " + n);
        this.rows = rows;
        this.cols = cols;
        this.m = m;
        this.n = n;
        this.sIn = sIn;
        this.sOut = sOut;
        this.tIn = Hadamard.of(n);
        this.tOut = Hadamard.of(m);
    }

    /** W~ [m, n] of W [rows, cols] (both row-major; w untouched). */
    public float[] forward(float[] w) {
        float[] wt = new float[m * n];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(w, r * cols, wt, r * n, cols);
            multiplySigns(wt, r * n, sIn);
        }
        tIn.applyRows(wt, 0, m, false);                 // rows: W S_in T_in^T
        float[] t = QuantOps.transpose(wt, m, n);       // columns as rows
        for (int c = 0; c < n; c++) multiplySigns(t, c * m, sOut);
        tOut.applyRows(t, 0, n, false);
        return QuantOps.transpose(t, n, m);
    }

    /** W [rows, cols] of W~ [m, n] (wt untouched). */
    public float[] inverse(float[] wt) {
        float[] t = QuantOps.transpose(wt, m, n);
        tOut.applyRows(t, 0, n, true);                  // columns: S_out T_out^T
        for (int c = 0; c < n; c++) multiplySigns(t, c * m, sOut);
        float[] c = QuantOps.transpose(t, n, m);
        tIn.applyRows(c, 0, m, true);                   // rows: (row T_in S_in) = S_in T_in^T row
        float[] w = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            multiplySigns(c, r * n, sIn);
            System.arraycopy(c, r * n, w, r * cols, cols);
        }
        return w;
    }

    /** x~ [n] of an input x [cols]. */
    public float[] input(float[] x) {
        float[] xt = new float[n];
        System.arraycopy(x, 0, xt, 0, cols);
        multiplySigns(xt, 0, sIn);
        tIn.apply(xt, 0);
        return xt;
    }

    /** T_out S_out P_out y of an output y [rows]: what W~ x~ gives. */
    public float[] output(float[] y) {
        float[] yt = new float[m];
        System.arraycopy(y, 0, yt, 0, rows);
        multiplySigns(yt, 0, sOut);
        tOut.apply(yt, 0);
        return yt;
    }

    /** H~ [n, n] of H [cols, cols], computed in float (row-major; h untouched). */
    public float[] hessian(double[] h) {
        float[] hf = new float[n * n];
        for (int i = 0; i < cols; i++) {
            for (int j = 0; j < cols; j++) hf[i * n + j] = (float) (h[i * cols + j] * sIn[i] * sIn[j]);
        }
        tIn.applyRows(hf, 0, n, false);        // S H S T^T
        hf = QuantOps.transpose(hf, n, n);     // T S H S
        tIn.applyRows(hf, 0, n, false);        // T S H S T^T
        return hf;
    }

    /** T_in, of length n. */
    public Hadamard inputTransform() { return tIn; }

    /** T_out, of length m. */
    public Hadamard outputTransform() { return tOut; }

    /** x[off + i] *= signs[i] for i < signs.length. */
    public static void multiplySigns(float[] x, int off, byte[] signs) {
        for (int i = 0; i < signs.length; i++) if (signs[i] < 0) x[off + i] = -x[off + i];
    }
}
