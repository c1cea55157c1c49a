package casp.compress;

import java.util.Map;

/**
 * What every quantizer backend returns for one linear layer: enough to rebuild the weight and to
 * account for its size. Scalar-grid methods (RTN, GPTQ) return a {@link QuantizedWeight}; codebook
 * methods (QuIP#, AQLM) will return their own implementations.
 */
public interface QuantizedLayer {
    /** Output features (rows of W). */
    int rows();

    /** Input features (columns of W). */
    int cols();

    /** The method that produced it, as written in quantization_config ("rtn", "gptq", ...). */
    String method();

    /** The weight the compressed form stands for, row-major [rows, cols]. */
    float[] dequantize();

    /** Stored bits per weight, side information (scales, zeros, codebooks) included. */
    double effectiveBits();

    /**
     * Numbers worth reporting about how it was produced (for casp-report.json), e.g. the damping a
     * GPTQ run ended up using. Keys are snake_case; the map is unmodifiable.
     */
    Map<String, Number> stats();
}
