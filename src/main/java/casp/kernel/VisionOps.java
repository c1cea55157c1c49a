package casp.kernel;

/**
 * Element-wise and row-wise kernels of the CLIP vision tower and the LLaVA projector:
 * LayerNorm, GELU (exact, erf), quick GELU, softmax, bias add and residual add. All work on
 * row-major float arrays in place or into a destination; rows of length n start at off + r * n.
 * The Vector API bodies live in {@link VisionSimd} and run when {@link VectorSupport} enables
 * them; the loops here are the scalar paths.
 *
 * <p>exp is the deterministic {@link Exp#exp(float)} (not the Vector API's EXP, whose last bit
 * depends on the JIT tier), so GELU, quick GELU and softmax give the same bits in every JIT tier,
 * in the vector loops, the scalar tails and the scalar paths, at every vector width.
 */
public final class VisionOps {
    private VisionOps() {}

    private static final boolean SIMD = VectorSupport.enabled();

    /**
     * LayerNorm of each of {@code rows} rows of length n: out = (x - mean) / sqrt(var + eps) * gamma + beta,
     * with the biased variance like torch (two passes: the centred sum of squares, not E[x^2] - E[x]^2).
     * Sums are folded into float64. out may be x.
     */
    public static void layerNorm(float[] x, int xOff, float[] out, int outOff, int rows, int n,
                                 float[] gamma, float[] beta, float eps) {
        if (SIMD) {
            VisionSimd.layerNorm(x, xOff, out, outOff, rows, n, gamma, beta, eps);
            return;
        }
        for (int r = 0; r < rows; r++) {
            int xo = xOff + r * n, oo = outOff + r * n;
            double s = 0;
            for (int i = 0; i < n; i++) s += x[xo + i];
            float m = (float) (s / n);
            double ss = 0;
            for (int i = 0; i < n; i++) {
                float d = x[xo + i] - m;
                ss += d * d;
            }
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            for (int i = 0; i < n; i++) out[oo + i] = Math.fma((x[xo + i] - m) * inv, gamma[i], beta[i]);
        }
    }

    /** y[r, :] += bias for each of rows rows of length n. */
    public static void addBias(float[] y, int off, int rows, int n, float[] bias) {
        if (SIMD) {
            VisionSimd.addBias(y, off, rows, n, bias);
            return;
        }
        for (int r = 0; r < rows; r++) for (int i = 0; i < n; i++) y[off + r * n + i] += bias[i];
    }

    /** dst[dOff + i] += src[sOff + i] for i in [0, n). */
    public static void add(float[] dst, int dOff, float[] src, int sOff, int n) {
        if (SIMD) {
            VisionSimd.add(dst, dOff, src, sOff, n);
            return;
        }
        for (int i = 0; i < n; i++) dst[dOff + i] += src[sOff + i];
    }

    /** In place: x * sigmoid(1.702 x) (CLIP's quick_gelu). */
    public static void quickGelu(float[] x, int off, int n) {
        if (SIMD) {
            VisionSimd.quickGelu(x, off, n);
            return;
        }
        for (int i = 0; i < n; i++) x[off + i] = quickGelu(x[off + i]);
    }

    /** Scalar quick_gelu, bit-identical to the vector loop. */
    public static float quickGelu(float v) {
        return v / (Exp.exp(v * -1.702f) + 1f);
    }

    // erf(z): for |z| < 1 the odd Maclaurin series to z^21 (truncation < 1.3e-8); beyond, erfc(|z|) by
    // the Chebyshev-fitted formula of Numerical Recipes (erfcc: t = 1 / (1 + |z|/2),
    // erfc = t exp(-z^2 + poly(t)), relative error < 1.2e-7), whose absolute error shrinks with erfc.
    static final float[] R = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    static final float INV_SQRT2 = 0.70710678118654752f;
    /** 2/sqrt(pi) * (-1)^k / (k! (2k+1)), k = 0..10: erf(z) = z * sum_k C[k] z^(2k). */
    static final float[] C = new float[11];

    static {
        double f = 1;
        for (int k = 0; k <= 10; k++) {
            if (k > 0) f *= k;
            C[k] = (float) (2 / Math.sqrt(Math.PI) * (k % 2 == 0 ? 1 : -1) / (f * (2 * k + 1)));
        }
    }

    /** In place: exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch's default gelu). */
    public static void gelu(float[] x, int off, int n) {
        if (SIMD) {
            VisionSimd.gelu(x, off, n);
            return;
        }
        for (int i = 0; i < n; i++) x[off + i] = gelu(x[off + i]);
    }

    /** Scalar exact GELU, bit-identical to the vector loop. */
    public static float gelu(float v) {
        return 0.5f * v * (1f + erf(v * INV_SQRT2));
    }

    /** erf(z) with absolute error below 1.5e-7, about 2 float32 ulps (series for |z| < 1, Numerical Recipes' erfc fit beyond). */
    public static float erf(float z) {
        float a = Math.abs(z);
        float z2 = z * z;
        if (a < 1f) {
            float s = C[10];
            for (int k = 9; k >= 0; k--) s = Math.fma(s, z2, C[k]);
            return s * z;
        }
        float t = 1f / (a * 0.5f + 1f);
        float p = R[9];
        for (int k = 8; k >= 0; k--) p = Math.fma(p, t, R[k]);
        float r = 1f - t * Exp.exp(p - z2);
        return z < 0 ? -r : r;
    }

    /**
     * Row-wise softmax in place over the first {@code len} entries of each of rows rows of stride
     * {@code stride}; entries in [len, stride) are untouched. Subtracts the row max first.
     */
    public static void softmax(float[] x, int off, int rows, int len, int stride) {
        if (SIMD) {
            VisionSimd.softmax(x, off, rows, len, stride);
            return;
        }
        for (int r = 0; r < rows; r++) {
            int o = off + r * stride;
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < len; i++) max = Math.max(max, x[o + i]);
            double sum = 0;
            for (int i = 0; i < len; i++) {
                float e = Exp.exp(x[o + i] - max);
                x[o + i] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            for (int i = 0; i < len; i++) x[o + i] *= inv;
        }
    }
}
