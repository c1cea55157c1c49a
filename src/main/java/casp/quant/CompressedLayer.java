package casp.quant;

import casp.io.SafeTensorsWriter;
import casp.model.Linear;

import java.util.Map;

/**
 * One linear layer in a stored compressed form: what every quantizer returns and what every
 * storage format reads back. It knows its exact storage cost, writes its own tensors under the
 * linear's prefix (in place of {@code prefix.weight}) and gives the {@link Linear} that runs it.
 */
public interface CompressedLayer {
    /** Output features (rows of W). */
    int rows();

    /** Input features (columns of W). */
    int cols();

    /** The method that produced it, as written in reports ("rtn", "gptq", "quip#", "aqlm", ...). */
    String method();

    /** How it is stored. */
    StorageFormat format();

    /** Nominal bits per weight of its codes (what a bit allocation assigns); 0 for a float32 weight. */
    int bits();

    /** Input columns that share one scale or codebook group; -1 when the format has no such groups. */
    default int groupSize() { return -1; }

    /** The weight the compressed form stands for, row-major [rows, cols]. */
    float[] dequantize();

    /** Exact bits of everything stored for it (codes and side information such as scales, zeros, codebooks). */
    long storageBits();

    /** Stored bits per weight, side information included. */
    double effectiveBits();

    /**
     * Numbers worth reporting about how it was produced (for casp-report.json), e.g. the damping a
     * GPTQ run ended up using. Keys are snake_case; the map is unmodifiable.
     */
    Map<String, Number> stats();

    /** Adds its tensors to w under prefix (e.g. "model.layers.0.mlp.down_proj"; names are prefix + "." + suffix). */
    void write(SafeTensorsWriter w, String prefix);

    /** The layer as the runtime runs it (packed codes on the dequantizing kernels where the format has them). */
    Linear linear(float[] bias);
}
