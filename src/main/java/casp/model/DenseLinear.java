package casp.model;

import casp.kernel.Gemm;
import casp.kernel.VectorOps;

/**
 * A float32 linear layer: weight row-major [out, in] (the Hugging Face layout), optional bias.
 * Batches go through {@link Gemm#sgemm} with W transposed; single rows through {@link Gemm#matVec}.
 */
public final class DenseLinear implements Linear {
    private final int in, out;
    private final float[] weight;
    private final float[] bias;

    /** Wraps (does not copy) weight [out*in] and bias [out] (null for none). */
    public DenseLinear(int in, int out, float[] weight, float[] bias) {
        if ((long) in * out != weight.length)
            throw new IllegalArgumentException("weight has " + weight.length + " values, expected " + out + "x" + in);
        if (bias != null && bias.length != out)
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + out);
        this.in = in;
        this.out = out;
        this.weight = weight;
        this.bias = bias;
    }

    @Override public int in() { return in; }

    @Override public int out() { return out; }

    /** The weight, row-major [out, in] (shared, not a copy). */
    public float[] weight() { return weight; }

    /** The bias [out], or null. */
    public float[] bias() { return bias; }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        if (rows == 1) {
            Gemm.matVec(out, in, weight, 0, in, x, xOff, y, yOff);
        } else {
            Gemm.sgemm(false, true, rows, out, in, 1f, x, xOff, in, weight, 0, in, 0f, y, yOff, out);
        }
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out);
    }
}
