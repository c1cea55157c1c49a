package casp.kernel;

import java.util.Arrays;

/**
 * Scaled dot-product attention of a block of consecutive query rows of one head over cached keys
 * and values: the inner loop of causal attention. Keys and values are stored transposed
 * (feature-major: feature i of position j at kt[kOff + i*ld + j]), so both the scores and the
 * weighted sum of values are long vector loops over positions whatever the head size, and one
 * pass over a feature row of K serves every query row of the block.
 */
public final class AttentionKernel {
    private AttentionKernel() {}

    /**
     * For query rows r in [0, rows): row r (q[qOff + r*qStride .. + hd)) attends to the first
     * n0 + r positions (causal when the block starts at position n0 - 1):
     * out_r = softmax(scale * q_r K^T) V. probs[pOff + r*pStride, + n0 + r) is scratch and is left
     * holding row r's probabilities (the entries after them in the row are set to 0 up to n0 + rows - 1);
     * out[outOff + r*outStride, + hd) is overwritten.
     */
    public static void attendRows(float[] q, int qOff, int qStride, int rows, float[] kt, int kOff, float[] vt, int vOff,
                                  int ld, int n0, int hd, float scale, float[] probs, int pOff, int pStride,
                                  float[] out, int outOff, int outStride) {
        int width = n0 + rows - 1;
        for (int r = 0; r < rows; r++) Arrays.fill(probs, pOff + r * pStride, pOff + r * pStride + width, 0f);
        for (int i = 0; i < hd; i++) {
            int krow = kOff + i * ld;
            for (int r = 0; r < rows; r++)
                Blas1.axpy(n0 + r, q[qOff + r * qStride + i] * scale, kt, krow, probs, pOff + r * pStride);
        }
        for (int r = 0; r < rows; r++) Activations.softmax(probs, pOff + r * pStride, n0 + r);
        for (int i = 0; i < hd; i++) {
            int vrow = vOff + i * ld;
            for (int r = 0; r < rows; r++)
                out[outOff + r * outStride + i] = VectorOps.sequentialDot(probs, pOff + r * pStride, vt, vrow, n0 + r);
        }
    }
}
