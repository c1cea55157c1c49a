package casp.quant;

import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.model.Linear;

import java.util.Map;
import java.util.function.Predicate;

/**
 * One way a compressed linear is stored in a folder (GPTQ v1 tensors, QuIP# codes, AQLM codes,
 * low-rank factors). Each format package has one; {@link Formats} lists them.
 */
public interface StorageFormat {
    /** The name casp writes in quantization_config (e.g. a factor's "a_format"). */
    String name();

    /** Whether tensors of this format are stored under prefix (has: whether a tensor name exists). */
    boolean storedAt(Predicate<String> has, String prefix);

    /**
     * Reads the layer stored under prefix in a file casp wrote (a checkpoint), with the method, width and
     * report numbers recorded for it (tensors alone do not always show the width or a factor rank).
     */
    CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats);

    /**
     * The runtime layer stored under prefix in a compressed model folder, its settings taken from the
     * folder's quantization_config; null when the folder stores nothing of this format there.
     */
    Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias);
}
