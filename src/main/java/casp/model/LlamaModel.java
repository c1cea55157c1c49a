package casp.model;

import casp.io.BadInputException;
import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.io.WeightStore;
import casp.kernel.HalfMatrix;
import casp.kernel.VectorOps;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Llama-family causal language model (llama, mistral, qwen2; also the language model inside
 * a LLaVA folder): token embeddings, decoder layers, final RMSNorm and the output head. Weights
 * stored as F16 / BF16 (embeddings, head, decoder linears) stay in those 16 bits, widened inside
 * the kernels; F32 weights and norms are float32.
 *
 * <p>The forward pass runs on input embeddings, so a caller (LLaVA) can splice image features
 * in before calling it. Typical use:
 * <pre>
 *   LlamaModel m = LlamaModel.load(dir);
 *   KvCache cache = m.newCache(512);
 *   float[] logits = m.forwardEmbeddings(m.embed(ids), ids.length, cache, false); // last position
 *   m.decode(nextId, cache, logits);                                           // one more token
 * </pre>
 * Not thread-safe: one forward pass at a time (its buffers are reused between calls).
 */
public final class LlamaModel {
    private final ModelConfig.TextConfig config;
    /** The token embeddings [vocab, hidden]: float32, or 16 bits as the file stores them (one of the two is null). */
    private final float[] embedding;
    private final HalfMatrix embedding16;
    private final List<DecoderLayer> layers;
    private final float[] finalNorm;
    private final Linear lmHead;
    private final boolean tied;
    private final RotaryEmbedding rope;
    private final Workspace ws;

    private LlamaModel(ModelConfig.TextConfig config, float[] embedding, HalfMatrix embedding16, List<DecoderLayer> layers, float[] finalNorm,
                       Linear lmHead, boolean tied, RotaryEmbedding rope, Workspace ws) {
        this.config = config;
        this.embedding = embedding;
        this.embedding16 = embedding16;
        this.layers = Collections.unmodifiableList(layers);
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
        this.tied = tied;
        this.rope = rope;
        this.ws = ws;
    }

    /** Loads the language model of a Hugging Face folder (F32, F16 or BF16 weights; 16-bit ones stay 16-bit). */
    public static LlamaModel load(Path dir) {
        return load(ModelFolder.open(dir));
    }

    /** Loads the language model of an opened folder (the text part of a LLaVA folder too). */
    public static LlamaModel load(ModelFolder folder) {
        return load(folder, (prefix, in, out, bias) -> null);
    }

    /**
     * As {@link #load(ModelFolder)}, with the decoder linears that decoderLinears supplies in place
     * of the folder's (e.g. placeholders read one block at a time later, so that the whole
     * decoder is never in memory).
     */
    public static LlamaModel load(ModelFolder folder, LinearSource decoderLinears) {
        WeightStore w = folder.weights();
        return build(folder.config().text(), folder.textPrefix(), folder.headTied() ? null : folder.lmHead(),
                new Tensors() {
                    public boolean has(String name) { return w.has(name); }
                    public float[] floats(String name, long... shape) { return w.floats(name, shape); }
                    // F16 / BF16 embeddings, head and decoder linears stay in 16 bits (null: widen them, e.g. F32 or an fp16 inf / NaN)
                    public HalfMatrix halfs(String name, int rows, int cols) { return HalfLinear.matrix(w, name, rows, cols); }
                    // compressed folders: a format's tensors (<name>.qweight, ...) instead of <name>.weight
                    public Linear compressed(String prefix, int in, int out, float[] bias) {
                        Linear supplied = decoderLinears.linear(prefix, in, out, bias);
                        if (supplied != null) return supplied;
                        return CompressedLinearReader.installed().read(folder, prefix, in, out, bias);
                    }
                }, folder.dir().toString());
    }

    /**
     * Builds a model from tensors in memory, named as in a plain Llama folder ("model.layers.0.
     * self_attn.q_proj.weight", ..., "lm_head.weight" unless the config ties the head). The arrays
     * are used, not copied.
     */
    public static LlamaModel fromTensors(ModelConfig.TextConfig c, Map<String, float[]> tensors) {
        return fromTensors(c, tensors, (prefix, in, out, bias) -> null);
    }

    /**
     * Supplies a decoder linear in place of its float weight: given the linear's prefix (e.g.
     * "model.layers.0.mlp.up_proj"), its shape and bias, the layer, or null to use the float weight.
     */
    public interface LinearSource {
        Linear linear(String prefix, int in, int out, float[] bias);
    }

    /**
     * As {@link #fromTensors(ModelConfig.TextConfig, Map)}, with the decoder linears that linears
     * supplies (their float weights may then be absent from tensors).
     */
    public static LlamaModel fromTensors(ModelConfig.TextConfig c, Map<String, float[]> tensors, LinearSource linears) {
        return build(c, "model.", c.tieWordEmbeddings() ? null : "lm_head.weight", new Tensors() {
            public Linear compressed(String prefix, int in, int out, float[] bias) { return linears.linear(prefix, in, out, bias); }
            public boolean has(String name) { return tensors.containsKey(name); }
            public float[] floats(String name, long... shape) {
                float[] a = tensors.get(name);
                long n = 1;
                for (long s : shape) n *= s;
                if (a == null) throw new BadInputException("missing tensor '" + name + "'");
                if (a.length != n) throw new BadInputException("tensor '" + name + "' has " + a.length + " values, expected " + n);
                return a;
            }
        }, "tensors");
    }

    /** Where {@link #build} reads tensors from. */
    private interface Tensors {
        boolean has(String name);

        float[] floats(String name, long... shape);

        /** The compressed linear stored under prefix, or null when it is a float weight. */
        default Linear compressed(String prefix, int in, int out, float[] bias) { return null; }

        /** The tensor [rows, cols] kept in 16 bits, or null to read it as floats. */
        default HalfMatrix halfs(String name, int rows, int cols) { return null; }
    }

    private static LlamaModel build(ModelConfig.TextConfig c, String prefix, String headName, Tensors w, String where) {
        int d = c.hiddenSize(), qDim = c.qDim(), kvDim = c.kvDim(), inter = c.intermediateSize(), vocab = c.vocabSize();
        HalfMatrix embedding16 = w.halfs(prefix + "embed_tokens.weight", vocab, d);
        float[] embedding = embedding16 != null ? null : w.floats(prefix + "embed_tokens.weight", vocab, d);
        RotaryEmbedding rope = new RotaryEmbedding(c);
        Workspace ws = new Workspace(c);
        List<DecoderLayer> layers = new ArrayList<>(c.numLayers());
        for (int i = 0; i < c.numLayers(); i++) {
            String lp = prefix + "layers." + i + ".";
            Map<String, Linear> lin = new LinkedHashMap<>();
            for (String name : DecoderLayer.LINEARS) {
                int in = name.equals(DecoderLayer.O) ? qDim : name.equals(DecoderLayer.DOWN) ? inter : d;
                int out = name.equals(DecoderLayer.Q) ? qDim
                        : name.equals(DecoderLayer.K) || name.equals(DecoderLayer.V) ? kvDim
                        : name.equals(DecoderLayer.O) || name.equals(DecoderLayer.DOWN) ? d : inter;
                String wn = lp + name + ".weight", bn = lp + name + ".bias";
                if (DecoderLayer.QKV.contains(name) && c.attentionBias() && !w.has(bn))
                    throw new BadInputException(where + ": config has q/k/v biases (" + c.modelType()
                            + ") but tensor '" + bn + "' is missing");
                float[] bias = w.has(bn) ? w.floats(bn, out) : null;
                Linear compressed = w.compressed(lp + name, in, out, bias);
                HalfMatrix half = compressed != null ? null : w.halfs(wn, out, in);
                lin.put(name, compressed != null ? compressed : half != null ? new HalfLinear(half, bias)
                        : new DenseLinear(in, out, w.floats(wn, out, in), bias));
            }
            layers.add(new DecoderLayer(i, c, w.floats(lp + "input_layernorm.weight", d),
                    w.floats(lp + "post_attention_layernorm.weight", d), lin, rope, ws));
        }
        float[] norm = w.floats(prefix + "norm.weight", d);
        // a quantized head (GPTQ lm_head: true) has no .weight tensor
        Linear head = headName != null && !w.has(headName)
                ? w.compressed(headName.substring(0, headName.length() - ".weight".length()), d, vocab, null) : null;
        if (head == null) {
            HalfMatrix head16 = headName == null ? embedding16 : w.halfs(headName, vocab, d);
            head = head16 != null ? new HalfLinear(head16, null)
                    : new DenseLinear(d, vocab, headName == null ? embedding : w.floats(headName, vocab, d), null);
        }
        return new LlamaModel(c, embedding, embedding16, layers, norm, head, headName == null, rope, ws);
    }

    public ModelConfig.TextConfig config() { return config; }

    public int hiddenSize() { return config.hiddenSize(); }

    public int vocabSize() { return config.vocabSize(); }

    public int numLayers() { return layers.size(); }

    public DecoderLayer layer(int i) { return layers.get(i); }

    public List<DecoderLayer> layers() { return layers; }


    /** The output head [vocab, hidden]. */
    public Linear lmHead() { return lmHead; }

    /** True when the output head shares the embedding table. */
    public boolean headTied() { return tied; }

    /** The rotary embedding tables. */
    public RotaryEmbedding rope() { return rope; }

    /** A KV cache for up to capacity positions. */
    public KvCache newCache(int capacity) {
        rope.ensure(capacity);
        return new KvCache(layers.size(), config.numKvHeads(), config.headDim(), capacity);
    }

    /** Token embeddings of ids: a new row-major [ids.length, hidden] array. */
    public float[] embed(int[] ids) {
        float[] out = new float[Math.multiplyExact(ids.length, config.hiddenSize())];
        embed(ids, 0, ids.length, out, 0);
        return out;
    }

    /** Embeddings of ids[from, from+count) into out from outOff. */
    public void embed(int[] ids, int from, int count, float[] out, int outOff) {
        for (int i = 0; i < count; i++) embed(ids[from + i], out, outOff + i * config.hiddenSize());
    }

    /** The embedding of one token into out from outOff. */
    public void embed(int id, float[] out, int outOff) {
        if (id < 0 || id >= config.vocabSize())
            throw new BadInputException("token id " + id + " is outside the model's vocabulary [0, " + config.vocabSize() + ")");
        int d = config.hiddenSize();
        if (embedding16 != null) embedding16.row(id, out, outOff);
        else System.arraycopy(embedding, id * d, out, outOff, d);
    }

    /**
     * Runs all decoder layers on T rows of input embeddings x ([T, hidden], overwritten with the
     * last layer's hidden state), at positions cache.length() onwards; then advances the cache.
     * With a null cache the pass starts at position 0 and keeps nothing.
     */
    public void forwardHidden(float[] x, int T, KvCache cache, ForwardHooks hooks) {
        int start = cache == null ? 0 : cache.length();
        if (cache != null && start + T > cache.capacity())
            throw new IllegalStateException("KV cache holds " + start + " of " + cache.capacity() + " positions; " + T + " more do not fit");
        if (x.length < (long) T * config.hiddenSize())
            throw new IllegalArgumentException("x has " + x.length + " values, need " + T + " x " + config.hiddenSize());
        for (int i = 0; i < layers.size(); i++) { // indexed: an iterator would be garbage on every decoded token
            DecoderLayer layer = layers.get(i);
            layer.forward(x, T, start, cache == null ? null : cache.layer(layer.index()), hooks);
        }
        if (cache != null) cache.advance(T);
    }

    /**
     * Final norm and output head for rows [row, row+rows) of a hidden state: logits row-major
     * [rows, vocab] into out from outOff. The hidden state is not modified.
     */
    public void logits(float[] hidden, int row, int rows, float[] out, int outOff) {
        int d = config.hiddenSize();
        ws.ensureRows(rows);
        VectorOps.rmsNormRows(hidden, row * d, finalNorm, ws.xn, 0, rows, d, config.rmsNormEps());
        lmHead.forward(ws.xn, 0, out, outOff, rows);
    }

    /**
     * The full forward pass on input embeddings x ([T, hidden], overwritten). Returns the logits
     * of every position ([T, vocab]) or only of the last one ([vocab]).
     */
    public float[] forwardEmbeddings(float[] x, int T, KvCache cache, boolean allPositions) {
        return forwardEmbeddings(x, T, cache, allPositions, ForwardHooks.NONE);
    }

    /** {@link #forwardEmbeddings(float[], int, KvCache, boolean)} with hooks. */
    public float[] forwardEmbeddings(float[] x, int T, KvCache cache, boolean allPositions, ForwardHooks hooks) {
        forwardHidden(x, T, cache, hooks);
        int rows = allPositions ? T : 1;
        float[] out = new float[Math.multiplyExact(rows, config.vocabSize())];
        logits(x, T - rows, rows, out, 0);
        return out;
    }

    /** Forward pass on token ids (see {@link #forwardEmbeddings}). */
    public float[] forward(int[] ids, KvCache cache, boolean allPositions) {
        return forwardEmbeddings(embed(ids), ids.length, cache, allPositions);
    }

    /**
     * One decoding step: the logits ([vocab], into logits) of token at position cache.length(),
     * which it then advances. Allocates nothing once the buffers have their size.
     */
    public void decode(int token, KvCache cache, float[] logits) {
        embed(token, ws.one, 0);
        forwardHidden(ws.one, 1, cache, ForwardHooks.NONE);
        logits(ws.one, 0, 1, logits, 0);
    }
}
