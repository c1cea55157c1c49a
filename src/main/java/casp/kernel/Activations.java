package casp.kernel;

/**
 * Element-wise nonlinearities of the forward pass: the SiLU-gated product of the Llama MLP,
 * softmax, and a float64 log-sum-exp for cross-entropy. Vector API when enabled, plain loops
 * otherwise (see {@link VectorSupport}). SiLU and softmax use the deterministic {@link Exp}, so
 * they give the same bits in every JIT tier, in vector loops and scalar tails, at every width.
 */
public final class Activations {
    private Activations() {}

    private static final boolean SIMD = VectorSupport.enabled();

    /** gate[gOff+i] = silu(gate[gOff+i]) * up[uOff+i], silu(x) = x / (1 + e^-x). */
    public static void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        if (SIMD) {
            ModelSimd.siluMul(gate, gOff, up, uOff, n);
            return;
        }
        for (int i = 0; i < n; i++) gate[gOff + i] = silu(gate[gOff + i]) * up[uOff + i];
    }

    /** silu(x) = x / (1 + e^-x), bit-identical to the lanes of the vector loop. */
    public static float silu(float x) {
        return x / (1f + Exp.exp(-x));
    }

    /** Softmax of x[off, off+n) in place (max-subtracted, float32 like Hugging Face's upcast softmax). */
    public static void softmax(float[] x, int off, int n) {
        if (n == 0) return;
        float m = VectorOps.max(x, off, n);
        float sum;
        if (SIMD) {
            sum = ModelSimd.expShiftSum(x, off, n, m);
        } else {
            sum = 0f;
            for (int i = 0; i < n; i++) {
                float e = Exp.exp(x[off + i] - m);
                x[off + i] = e;
                sum += e;
            }
        }
        VectorOps.scale(x, off, n, 1f / sum);
    }

    /** log(sum_i exp(x[off+i])) accumulated in float64 (for cross-entropy / log-softmax). */
    public static double logSumExp(float[] x, int off, int n) {
        double m = VectorOps.max(x, off, n);
        if (Double.isInfinite(m)) return m;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(x[off + i] - m);
        return m + Math.log(sum);
    }
}
