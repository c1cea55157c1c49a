package casp.quant.registry;

import casp.io.ModelFolder;
import casp.model.CompressedLinearReader;
import casp.model.Linear;

/** The model's reader of compressed linears: the formats of {@link Formats} (registered in META-INF/services). */
public final class FormatReader implements CompressedLinearReader {
    @Override
    public Linear read(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return Formats.load(folder, prefix, in, out, bias);
    }
}
