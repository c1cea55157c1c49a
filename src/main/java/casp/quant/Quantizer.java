package casp.quant;

/**
 * A post-training quantizer of one linear layer y = W x: RTN and GPTQ (casp.quant.gptq), QuIP#
 * (casp.quant.quip), AQLM (casp.quant.aqlm), CASP's low-rank factors. Implementations are immutable
 * and thread-safe (their options are fixed at construction), and never modify their inputs.
 */
public interface Quantizer {
    /** Method name as written in reports: "rtn", "gptq", ... */
    String method();

    /** Nominal bits per code (what a bit allocation assigns). */
    int bits();

    /**
     * Exact bits the layer {@link #quantize} returns for a [rows, cols] weight will store
     * ({@link CompressedLayer#storageBits()}), known before quantizing: the bit allocation's cost.
     */
    long storageBits(int rows, int cols);

    /**
     * Quantizes W.
     *
     * @param w    the weight, row-major [rows = out features, cols = in features]
     * @param h    the layer's Hessian H = (2/N) sum x x^T, row-major [cols, cols] in float64; methods
     *             that do not use data (RTN) accept null
     */
    CompressedLayer quantize(float[] w, int rows, int cols, double[] h);

    /** Checks that W is [rows, cols] and H [cols, cols], both finite (the data-aware quantizers' inputs). */
    static void checkShapes(float[] w, int rows, int cols, double[] h) {
        if (rows < 1 || cols < 1 || w.length != (long) rows * cols) {
            throw new IllegalArgumentException("W has " + w.length + " values, expected " + rows + " x " + cols);
        }
        if (h == null || h.length != (long) cols * cols) {
            throw new IllegalArgumentException("H must be " + cols + " x " + cols
                    + (h == null ? ", got none" : ", got " + h.length + " values"));
        }
        for (double v : h) {
            if (!Double.isFinite(v)) throw new IllegalArgumentException("H has a non-finite entry (" + v + ")");
        }
        for (float v : w) {
            if (!Float.isFinite(v)) throw new IllegalArgumentException("W has a non-finite entry (" + v + ")");
        }
    }
}
