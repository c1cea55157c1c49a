package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise nonlinearities of the forward pass: the SiLU-gated product of the Llama MLP,
 * softmax, and a float64 log-sum-exp for cross-entropy.
 */
public final class Activations {
    private Activations() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();

    /** gate[gOff+i] = silu(gate[gOff+i]) * up[uOff+i], silu(x) = x / (1 + e^-x). */
    public static void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L) {
            FloatVector g = FloatVector.fromArray(S, gate, gOff + i);
            FloatVector sig = g.neg().lanewise(VectorOperators.EXP).add(1f);
            g.div(sig).mul(FloatVector.fromArray(S, up, uOff + i)).intoArray(gate, gOff + i);
        }
        for (; i < n; i++) {
            float g = gate[gOff + i];
            gate[gOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    /** Softmax of x[off, off+n) in place (max-subtracted, float32 like Hugging Face's upcast softmax). */
    public static void softmax(float[] x, int off, int n) {
        if (n == 0) return;
        float m = VectorOps.max(x, off, n);
        int i = 0;
        int bound = S.loopBound(n);
        float sum = 0f;
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < bound; i += L) {
                FloatVector e = FloatVector.fromArray(S, x, off + i).sub(m).lanewise(VectorOperators.EXP);
                e.intoArray(x, off + i);
                acc = acc.add(e);
            }
            sum = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - m);
            x[off + i] = e;
            sum += e;
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
