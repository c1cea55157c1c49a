package casp.quant.quip;

import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;

import java.util.Map;
import java.util.function.Predicate;

/**
 * QuIP# E8P12 codes (and the residual stage at 3 and 4 bits), sign vectors and scale: the tensors
 * {@link QuipLinear} reads (qidxs, su, sv, wscale, qidxs2, rscale).
 */
public final class QuipFormat implements StorageFormat {
    public static final QuipFormat INSTANCE = new QuipFormat();

    private QuipFormat() {}

    @Override public String name() { return QuipLinear.METHOD; }

    @Override
    public boolean storedAt(Predicate<String> has, String prefix) {
        return has.test(prefix + "." + QuipLinear.QIDXS);
    }

    @Override
    public CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        return new QuipLayer(QuipLinear.read(QuipLinear.source(st), st.path().toString(), prefix, cols, rows), stats);
    }

    @Override
    public Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return QuipLinear.load(folder, prefix, in, out, bias);
    }
}
