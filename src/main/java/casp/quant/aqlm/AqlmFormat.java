package casp.quant.aqlm;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;

import java.util.Arrays;
import java.util.Map;
import java.util.function.Predicate;

/** AQLM codes, codebooks and per-row scales: the tensors of {@link AqlmTensors}. */
public final class AqlmFormat implements StorageFormat {
    public static final AqlmFormat INSTANCE = new AqlmFormat();

    private AqlmFormat() {}

    @Override public String name() { return "aqlm"; }

    @Override
    public boolean storedAt(Predicate<String> has, String prefix) {
        return has.test(prefix + "." + AqlmTensors.CODES);
    }

    /** The codebook configuration (M codebooks of B bits) comes from the codebooks tensor's shape [M, 2^B, 1, 8]. */
    @Override
    public CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        String name = prefix + "." + AqlmTensors.CODEBOOKS;
        if (!st.tensors().containsKey(name) && st.tensors().containsKey(prefix + "." + AqlmTensors.CODEBOOKS_LAYER))
            throw new BadInputException(st.path() + ": AQLM layer '" + prefix + "' shares the codebooks of another layer, which this file "
                    + "does not hold (a checkpoint of a run with --share-codebooks cannot be resumed)");
        long[] s = st.info(name).shape();
        if (s.length != 4 || s[0] < 1 || s[0] > 16 || Long.bitCount(s[1]) != 1)
            throw new BadInputException(st.path() + ": tensor '" + name + "' has shape " + Arrays.toString(s) + ", expected [M, 2^B, 1, 8]");
        return AqlmWeight.of(AqlmTensors.read(st, prefix, rows, cols, (int) s[0], Long.numberOfTrailingZeros(s[1])), cols, stats);
    }

    @Override
    public Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return AqlmLinear.load(folder, prefix, in, out, bias);
    }
}
