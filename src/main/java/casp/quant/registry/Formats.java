package casp.quant.registry;

import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;
import casp.quant.aqlm.AqlmFormat;
import casp.quant.gptq.GptqFormat;
import casp.quant.lowrank.LowRankFormat;
import casp.quant.quip.QuipFormat;

import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The storage formats casp reads and writes, in the order a stored linear is recognised: low-rank
 * factors first (their tensors sit under the factors' own prefixes), then the code formats.
 * Adding a format is one line here (and, when it may also hold a low-rank factor, one in
 * {@link LowRankFormat#FACTOR_FORMATS}).
 */
public final class Formats {
    private Formats() {}

    /** Every format of a decoder linear. */
    public static final List<StorageFormat> ALL = List.of(
            LowRankFormat.INSTANCE,
            QuipFormat.INSTANCE,
            AqlmFormat.INSTANCE,
            GptqFormat.INSTANCE);

    /** The format stored under prefix, or null when there is none (a float weight). */
    public static StorageFormat storedAt(Predicate<String> has, String prefix) {
        for (StorageFormat f : ALL) if (f.storedAt(has, prefix)) return f;
        return null;
    }

    /**
     * Reads the layer stored under prefix in a file casp wrote (a checkpoint), or null when the file
     * stores none there.
     */
    public static CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        StorageFormat f = storedAt(st.tensors()::containsKey, prefix);
        return f == null ? null : f.read(st, prefix, method, rows, cols, bits, stats);
    }

    /** The runtime layer of a compressed linear in a model folder, or null when it is a float weight. */
    public static Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        StorageFormat f = storedAt(folder.weights()::has, prefix);
        return f == null ? null : f.load(folder, prefix, in, out, bias);
    }
}
