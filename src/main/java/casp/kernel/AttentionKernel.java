package casp.kernel;

import java.util.Arrays;

/**
 * Scaled dot-product attention for one query row of one head: the inner loop of causal
 * attention. The caller decides which keys a query may see (causality) and how the heads and
 * rows are spread over threads.
 */
public final class AttentionKernel {
    private AttentionKernel() {}

    /**
     * out = softmax(scale * q K^T) V over n keys. K and V hold n rows of hd values, row j at
     * kOff + j*hd (vOff + j*hd). probs[pOff, pOff+n) is scratch and is left holding the attention
     * probabilities; out[outOff, outOff+hd) is overwritten.
     */
    public static void attendRow(float[] q, int qOff, float[] k, int kOff, float[] v, int vOff, int n, int hd,
                                 float scale, float[] probs, int pOff, float[] out, int outOff) {
        for (int j = 0; j < n; j++) probs[pOff + j] = VectorOps.dot(q, qOff, k, kOff + j * hd, hd) * scale;
        Activations.softmax(probs, pOff, n);
        Arrays.fill(out, outOff, outOff + hd, 0f);
        for (int j = 0; j < n; j++) VectorOps.axpy(probs[pOff + j], v, vOff + j * hd, out, outOff, hd);
    }
}
