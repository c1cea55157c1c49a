package casp.kernel;

/**
 * Small loops over float arrays used by the model's forward pass: adding rows, scaling, RMSNorm,
 * rotary embeddings, max and argmax (dot products and axpy are {@link Blas1}'s). On the Vector API when {@link VectorSupport#enabled()}
 * (in {@link ModelSimd}), in plain loops otherwise. Every method takes arrays and offsets, never
 * vectors, so nothing is boxed across calls.
 */
public final class VectorOps {
    private VectorOps() {}

    private static final boolean SIMD = VectorSupport.enabled();

    /**
     * Sum of a[aOff+i] * b[bOff+i] for i in [0, n) with one FMA accumulator: the rounding of the
     * forward pass's RMSNorm and attention sums, which the reference tests pin. {@link Blas1#dot}
     * (two accumulators) is the general dot product.
     */
    static float sequentialDot(float[] a, int aOff, float[] b, int bOff, int n) {
        if (SIMD) return ModelSimd.dot(a, aOff, b, bOff, n);
        float s = 0f;
        for (int i = 0; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }

    /** y[yOff+i] += x[xOff+i] for i in [0, n). */
    public static void add(float[] x, int xOff, float[] y, int yOff, int n) {
        if (SIMD) {
            ModelSimd.add(x, xOff, y, yOff, n);
            return;
        }
        for (int i = 0; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    /** Adds the same row (e.g. a bias) to each of rows consecutive rows of y: y[r*n+i] += row[i]. */
    public static void addRowToEach(float[] row, int rowOff, float[] y, int yOff, int rows, int n) {
        for (int r = 0; r < rows; r++) add(row, rowOff, y, yOff + r * n, n);
    }

    /** x[off+i] *= s for i in [0, n). */
    public static void scale(float[] x, int off, int n, float s) {
        if (SIMD) {
            ModelSimd.scale(x, off, n, s);
            return;
        }
        for (int i = 0; i < n; i++) x[off + i] *= s;
    }

    /**
     * RMSNorm of one row as Hugging Face computes it in float32:
     * out = w * (x / sqrt(mean(x^2) + eps)). out may alias x.
     */
    public static void rmsNorm(float[] x, int xOff, float[] w, float[] out, int outOff, int n, float eps) {
        float ss = sequentialDot(x, xOff, x, xOff, n);
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        if (SIMD) {
            ModelSimd.scaleMul(x, xOff, inv, w, out, outOff, n);
            return;
        }
        for (int i = 0; i < n; i++) out[outOff + i] = (x[xOff + i] * inv) * w[i];
    }

    /** RMSNorm of rows consecutive rows of width n (x and out row-major, may alias). */
    public static void rmsNormRows(float[] x, int xOff, float[] w, float[] out, int outOff, int rows, int n, float eps) {
        for (int r = 0; r < rows; r++) rmsNorm(x, xOff + r * n, w, out, outOff + r * n, n, eps);
    }

    /**
     * Rotary embedding in the Hugging Face "rotate half" convention on one head vector of
     * 2*half values: for i < half, (x_i, x_{i+half}) becomes
     * (x_i cos_i - x_{i+half} sin_i, x_{i+half} cos_i + x_i sin_i).
     */
    public static void ropeRotateHalf(float[] x, int off, float[] cos, float[] sin, int csOff, int half) {
        if (SIMD) {
            ModelSimd.ropeRotateHalf(x, off, cos, sin, csOff, half);
            return;
        }
        for (int i = 0; i < half; i++) {
            float a = x[off + i], b = x[off + half + i], c = cos[csOff + i], s = sin[csOff + i];
            x[off + i] = a * c - b * s;
            x[off + half + i] = b * c + a * s;
        }
    }

    /** Index of the largest value in x[off, off+n) (the first one on ties); -1 when n is 0. */
    public static int argmax(float[] x, int off, int n) {
        int best = -1;
        float bv = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            float v = x[off + i];
            if (v > bv || best < 0) {
                bv = v;
                best = i;
            }
        }
        return best;
    }

    /** Largest value of x[off, off+n); -infinity when n is 0. */
    public static float max(float[] x, int off, int n) {
        if (SIMD) return ModelSimd.max(x, off, n);
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) m = Math.max(m, x[off + i]);
        return m;
    }
}
