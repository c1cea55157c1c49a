package casp.compress;

import casp.io.ModelFolder;
import casp.io.WeightStore;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.Linear;
import casp.model.LlamaModel;

/**
 * Decoder weights read one block at a time, so that compressing a model needs memory for one
 * block in float32 rather than the whole decoder: the model is loaded with a placeholder for every
 * decoder linear ({@link #loadModel}); {@link #load} reads a block's linears from the (possibly
 * 16-bit, sharded) safetensors and widens them to float32; {@link #release} puts the
 * placeholders back once the block is done, so its float32 weights can be collected.
 */
public final class BlockWeights {
    private final ModelFolder folder;
    private long loadNanos;

    private BlockWeights(ModelFolder folder) {
        this.folder = folder;
    }

    /** The language model of folder with every decoder linear unloaded, and the reader of its blocks. */
    public static Loaded loadModel(ModelFolder folder) {
        LlamaModel model = LlamaModel.load(folder, (prefix, in, out, bias) -> new Unloaded(prefix, in, out, bias));
        return new Loaded(model, new BlockWeights(folder));
    }

    /** A model whose decoder linears are read by blocks. */
    public record Loaded(LlamaModel model, BlockWeights weights) {}

    /**
     * Reads every unloaded decoder weight of model once, one tensor at a time, and drops it: a
     * damaged tensor (NaN or infinite values) is refused by name before any work, as a whole-model
     * load would, instead of after the blocks before it have run.
     */
    public void checkAll(LlamaModel model) {
        long t0 = System.nanoTime();
        WeightStore w = folder.weights();
        for (int l = 0; l < model.numLayers(); l++) {
            DecoderLayer layer = model.layer(l);
            for (String name : DecoderLayer.LINEARS)
                if (layer.linear(name) instanceof Unloaded u) w.floats(u.prefix + ".weight", u.out, u.in);
        }
        loadNanos += System.nanoTime() - t0;
    }

    /** Reads the float32 weights of the layer's unloaded linears (those already loaded or replaced are left as they are). */
    public void load(DecoderLayer layer) {
        long t0 = System.nanoTime();
        WeightStore w = folder.weights();
        for (String name : DecoderLayer.LINEARS) {
            if (layer.linear(name) instanceof Unloaded u)
                layer.setLinear(name, new DenseLinear(u.in, u.out, w.floats(u.prefix + ".weight", u.out, u.in), u.bias));
        }
        loadNanos += System.nanoTime() - t0;
    }

    /** Drops the layer's linears, whatever they became, for placeholders (the block is not run again). */
    public void release(DecoderLayer layer) {
        for (String name : DecoderLayer.LINEARS) {
            Linear l = layer.linear(name);
            if (l instanceof Unloaded) continue;
            layer.setLinear(name, new Unloaded(folder.layer(layer.index(), name), l.in(), l.out(),
                    l instanceof DenseLinear d ? d.bias() : null));
        }
    }

    /** Seconds spent reading and widening block weights so far. */
    public double loadSeconds() {
        return loadNanos / 1e9;
    }

    /** A decoder linear not in memory: it knows its name, shape and bias, and refuses to run. */
    static final class Unloaded implements Linear {
        final String prefix;
        final int in, out;
        final float[] bias;

        Unloaded(String prefix, int in, int out, float[] bias) {
            this.prefix = prefix;
            this.in = in;
            this.out = out;
            this.bias = bias;
        }

        @Override public int in() { return in; }

        @Override public int out() { return out; }

        @Override
        public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
            throw new IllegalStateException(prefix + " is not loaded: its block must be read with BlockWeights.load first");
        }
    }
}
