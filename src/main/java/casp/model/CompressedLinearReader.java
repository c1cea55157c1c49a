package casp.model;

import casp.io.ModelFolder;

import java.util.ServiceLoader;

/**
 * Reads the compressed decoder linears of a model folder (GPTQ tensors, QuIP# or AQLM codes,
 * low-rank factors). The storage formats live in the layer above the model (casp.quant), so the
 * model finds their reader at run time through {@link ServiceLoader} (registered in
 * META-INF/services); without one, every linear of a folder must be a float weight.
 */
public interface CompressedLinearReader {
    /** The compressed linear stored under prefix (e.g. "model.layers.0.mlp.up_proj"), or null when it is a float weight. */
    Linear read(ModelFolder folder, String prefix, int in, int out, float[] bias);

    /** The registered reader, or one that finds nothing when none is registered. */
    static CompressedLinearReader installed() {
        return Installed.READER;
    }

    /** Looked up once. */
    final class Installed {
        private Installed() {}

        static final CompressedLinearReader READER = ServiceLoader.load(CompressedLinearReader.class).findFirst()
                .orElse((folder, prefix, in, out, bias) -> null);
    }
}
