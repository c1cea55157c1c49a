package casp.model;

import casp.io.WeightPlacement;
import casp.io.WeightStore;
import casp.kernel.HalfMatrix;
import casp.kernel.VectorOps;
import casp.tensor.DType;

/**
 * A linear layer whose weight [out, in] stays in the 16 bits (fp16 or bf16) the model file stores,
 * with an optional float bias: the decoder linears, output head, projector and vision tower of a
 * Hugging Face checkpoint, which would otherwise be widened to float32 (twice the memory, and twice
 * the bytes read per decoded token).
 */
public final class HalfLinear implements Linear {
    private final HalfMatrix weight;
    private final float[] bias;

    /** Wraps weight and bias [out] (null for none). */
    public HalfLinear(HalfMatrix weight, float[] bias) {
        if (bias != null && bias.length != weight.rows())
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + weight.rows());
        this.weight = weight;
        this.bias = bias;
    }

    /**
     * The tensor name [rows, cols] of w in 16 bits, memory-mapped from the file or copied into the
     * heap as w's placement says, when the file stores it as F16 or BF16 (and, for fp16, holds no
     * infinity or NaN); null when it should be read as floats.
     */
    public static HalfMatrix matrix(WeightStore w, String name, int rows, int cols) {
        DType t = w.info(name).dtype();
        if (t != DType.F16 && t != DType.BF16) return null;
        boolean bf16 = t == DType.BF16;
        // mappedHalfs and halfs refuse NaN and infinity themselves: the matrix need not scan the values again
        return w.placement() != WeightPlacement.HEAP ? HalfMatrix.ofFinite(rows, cols, w.mappedHalfs(name, rows, cols), bf16)
                : HalfMatrix.ofFinite(rows, cols, w.halfs(name, rows, cols), bf16);
    }

    /** The linear stored as name [out, in] in w: a HalfLinear when {@link #matrix} keeps it in 16 bits, else a DenseLinear. */
    public static Linear load(WeightStore w, String name, int in, int out, float[] bias) {
        HalfMatrix m = matrix(w, name, out, in);
        return m != null ? new HalfLinear(m, bias) : new DenseLinear(in, out, w.floats(name, out, in), bias);
    }

    /** The same layer in float32 (the exact values: every 16-bit value is a float). */
    public DenseLinear widen() {
        return new DenseLinear(weight.cols(), weight.rows(), weight.toFloats(), bias);
    }

    /** l as a float32 layer: itself if dense, widened if 16-bit, else null. */
    public static DenseLinear dense(Linear l) {
        return l instanceof DenseLinear d ? d : l instanceof HalfLinear h ? h.widen() : null;
    }

    /** The 16-bit weight [out, in]. */
    public HalfMatrix weight() { return weight; }

    @Override public int in() { return weight.cols(); }

    @Override public int out() { return weight.rows(); }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        weight.matmul(x, xOff, rows, y, yOff);
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, weight.rows());
    }
}
