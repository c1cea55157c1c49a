package casp.model;

/**
 * A linear layer y = x W^T (+ b) with W of shape [out, in], applied to a batch of rows.
 * Dense float32 ({@link DenseLinear}) is the model as loaded; compression swaps in quantized or
 * low-rank implementations through {@link DecoderLayer#setLinear}.
 */
public interface Linear {
    /** Input width. */
    int in();

    /** Output width. */
    int out();

    /**
     * Y[rows, out] = X[rows, in] W^T (+ bias). X is read from x[xOff, xOff + rows*in) and Y written
     * to y[yOff, yOff + rows*out), both row-major and contiguous; x and y must not overlap.
     */
    void forward(float[] x, int xOff, float[] y, int yOff, int rows);
}
