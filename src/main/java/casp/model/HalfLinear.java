package casp.model;

import casp.kernel.HalfMatrix;

/**
 * A linear layer without bias whose weight [out, in] stays in the 16 bits (fp16 or bf16) the model
 * file stores: the output head of a Hugging Face checkpoint, which would otherwise be widened to
 * float32 (twice the memory, and twice the bytes read per decoded token).
 */
public final class HalfLinear implements Linear {
    private final HalfMatrix weight;

    public HalfLinear(HalfMatrix weight) {
        this.weight = weight;
    }

    @Override public int in() { return weight.cols(); }

    @Override public int out() { return weight.rows(); }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        weight.matmul(x, xOff, rows, y, yOff);
    }
}
