package casp.compress;

/**
 * A post-training quantizer of one linear layer y = W x. Implementations: {@link Rtn}, {@link Gptq};
 * QuIP# and AQLM later. Implementations are immutable and thread-safe (their options are fixed at
 * construction), and never modify their inputs.
 */
public interface Quantizer {
    /** Method name as written in quantization_config: "rtn", "gptq", ... */
    String method();

    /** Nominal bits per code (what a bit allocation assigns). */
    int bits();

    /**
     * Quantizes W.
     *
     * @param w    the weight, row-major [rows = out features, cols = in features]
     * @param h    the layer's Hessian H = (2/N) sum x x^T, row-major [cols, cols] in float64; methods
     *             that do not use data (RTN) accept null
     */
    QuantizedLayer quantize(float[] w, int rows, int cols, double[] h);
}
