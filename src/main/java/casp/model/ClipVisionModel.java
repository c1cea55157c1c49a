package casp.model;

import casp.io.BadInputException;
import casp.io.ModelConfig.VisionConfig;
import casp.io.WeightStore;
import casp.kernel.Gemm;
import casp.kernel.Parallel;
import casp.kernel.VisionOps;

/**
 * The CLIP vision transformer as Hugging Face's CLIPVisionModel (the vision tower of LLaVA):
 * patch embedding (a stride-P convolution, done as one GEMM over the unfolded patches), class
 * token, position embeddings, pre_layrnorm, pre-LN encoder layers, post_layernorm.
 *
 * <p>Hidden state i (as HF's {@code hidden_states[i]}) is the output after i encoder layers:
 * 0 is the embeddings after pre_layrnorm, {@link #numLayers()} the last layer's output.
 * Activations are row-major [tokens, hidden] with token 0 the class token.
 */
public final class ClipVisionModel {
    private final VisionConfig cfg;
    private final int hidden, tokens, patch, grid, channels;
    private final float[] patchWeight;   // [hidden, channels * patch * patch]
    private final float[] classEmbedding; // [hidden]
    private final float[] positions;     // [tokens, hidden]
    private final float[] preLnW, preLnB, postLnW, postLnB;
    private final Layer[] layers;

    /**
     * One pre-LN encoder layer's weights; linear weights are [out, in] as in torch, in 16 bits when the
     * file stores them so ({@link HalfLinear#load}).
     */
    private record Layer(float[] ln1W, float[] ln1B, Linear q, Linear k, Linear v, Linear o,
                         float[] ln2W, float[] ln2B, Linear fc1, Linear fc2) {}

    private ClipVisionModel(VisionConfig cfg, float[] patchWeight, float[] classEmbedding, float[] positions,
                            float[] preLnW, float[] preLnB, float[] postLnW, float[] postLnB, Layer[] layers) {
        this.cfg = cfg;
        this.hidden = cfg.hiddenSize();
        this.patch = cfg.patchSize();
        this.grid = cfg.imageSize() / cfg.patchSize();
        this.tokens = grid * grid + 1;
        this.channels = cfg.numChannels();
        this.patchWeight = patchWeight;
        this.classEmbedding = classEmbedding;
        this.positions = positions;
        this.preLnW = preLnW;
        this.preLnB = preLnB;
        this.postLnW = postLnW;
        this.postLnB = postLnB;
        this.layers = layers;
    }

    /**
     * Loads the tower from tensors named {@code prefix + "embeddings.patch_embedding.weight"} etc.
     * (prefix e.g. "vision_tower.vision_model."). Shapes are checked against the config.
     */
    public static ClipVisionModel load(WeightStore w, String prefix, VisionConfig cfg) {
        int h = cfg.hiddenSize(), p = cfg.patchSize(), c = cfg.numChannels(), inter = cfg.intermediateSize();
        if (cfg.imageSize() % p != 0)
            throw new BadInputException("vision_config: image_size " + cfg.imageSize() + " is not a multiple of patch_size " + p);
        if (h % cfg.numHeads() != 0)
            throw new BadInputException("vision_config: hidden_size " + h + " is not a multiple of num_attention_heads " + cfg.numHeads());
        int tokens = cfg.numPatches() + 1;
        String e = prefix + "embeddings.";
        float[] patchW = w.floats(e + "patch_embedding.weight", h, c, p, p);
        if (w.has(e + "patch_embedding.bias"))
            throw new BadInputException(prefix + "embeddings.patch_embedding.bias: CLIP's patch embedding has no bias; unsupported");
        float[] cls = w.floats(e + "class_embedding", h);
        float[] pos = w.floats(e + "position_embedding.weight", tokens, h);
        Layer[] layers = new Layer[cfg.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            String l = prefix + "encoder.layers." + i + ".";
            layers[i] = new Layer(
                    w.floats(l + "layer_norm1.weight", h), w.floats(l + "layer_norm1.bias", h),
                    HalfLinear.load(w, l + "self_attn.q_proj.weight", h, h, w.floats(l + "self_attn.q_proj.bias", h)),
                    HalfLinear.load(w, l + "self_attn.k_proj.weight", h, h, w.floats(l + "self_attn.k_proj.bias", h)),
                    HalfLinear.load(w, l + "self_attn.v_proj.weight", h, h, w.floats(l + "self_attn.v_proj.bias", h)),
                    HalfLinear.load(w, l + "self_attn.out_proj.weight", h, h, w.floats(l + "self_attn.out_proj.bias", h)),
                    w.floats(l + "layer_norm2.weight", h), w.floats(l + "layer_norm2.bias", h),
                    HalfLinear.load(w, l + "mlp.fc1.weight", h, inter, w.floats(l + "mlp.fc1.bias", inter)),
                    HalfLinear.load(w, l + "mlp.fc2.weight", inter, h, w.floats(l + "mlp.fc2.bias", h)));
        }
        // post_layernorm is only used by the pooled output; LLaVA never reads it, but load it when present.
        float[] postW = w.has(prefix + "post_layernorm.weight") ? w.floats(prefix + "post_layernorm.weight", h) : null;
        float[] postB = w.has(prefix + "post_layernorm.bias") ? w.floats(prefix + "post_layernorm.bias", h) : null;
        return new ClipVisionModel(cfg, patchW, cls, pos,
                w.floats(prefix + "pre_layrnorm.weight", h), w.floats(prefix + "pre_layrnorm.bias", h),
                postW, postB, layers);
    }

    public VisionConfig config() { return cfg; }

    /** Tokens per image: patches + the class token. */
    public int numTokens() { return tokens; }

    public int hiddenSize() { return hidden; }

    public int numLayers() { return layers.length; }

    /**
     * HF's {@code hidden_states[index]} for one image: index 0 = embeddings after pre_layrnorm,
     * index i = output of encoder layer i - 1. Negative indices count from the end, like Python
     * (-1 = last layer, -2 = second to last). Only the layers needed are run. Returns [tokens, hidden].
     */
    public float[] hiddenState(float[] pixels, int index) {
        int n = layers.length;
        int idx = index < 0 ? n + 1 + index : index;
        if (idx < 0 || idx > n) throw new IllegalArgumentException("hidden state " + index + " of a " + n + "-layer tower");
        float[] x = embed(pixels);
        Scratch s = new Scratch();
        for (int i = 0; i < idx; i++) layer(layers[i], x, s);
        return x;
    }

    /** All hidden states, {@code [numLayers + 1][tokens * hidden]}, as HF's output_hidden_states. */
    public float[][] hiddenStates(float[] pixels) {
        float[][] out = new float[layers.length + 1][];
        float[] x = embed(pixels);
        out[0] = x.clone();
        Scratch s = new Scratch();
        for (int i = 0; i < layers.length; i++) {
            layer(layers[i], x, s);
            out[i + 1] = x.clone();
        }
        return out;
    }

    /** post_layernorm applied to every row of a hidden state (HF applies it to the pooled CLS row). */
    public float[] postLayerNorm(float[] hiddenState) {
        if (postLnW == null || postLnB == null) throw new IllegalStateException("model has no post_layernorm tensors");
        float[] out = new float[hiddenState.length];
        VisionOps.layerNorm(hiddenState, 0, out, 0, hiddenState.length / hidden, hidden, postLnW, postLnB, cfg.layerNormEps());
        return out;
    }

    /** Patch embedding + class token + positions, then pre_layrnorm: [tokens, hidden]. */
    private float[] embed(float[] pixels) {
        int img = cfg.imageSize();
        if (pixels.length != channels * img * img)
            throw new IllegalArgumentException("expected " + channels + "x" + img + "x" + img + " pixels, got " + pixels.length);
        int kdim = channels * patch * patch, np = grid * grid;
        // Unfold: row = patch (row-major over the grid), column = (channel, ky, kx) as the conv weight is laid out.
        float[] cols = new float[np * kdim];
        for (int gy = 0; gy < grid; gy++) {
            for (int gx = 0; gx < grid; gx++) {
                int row = (gy * grid + gx) * kdim;
                for (int c = 0; c < channels; c++) {
                    for (int ky = 0; ky < patch; ky++) {
                        int src = (c * img + gy * patch + ky) * img + gx * patch;
                        System.arraycopy(pixels, src, cols, row + (c * patch + ky) * patch, patch);
                    }
                }
            }
        }
        float[] x = new float[tokens * hidden];
        // Patches land in rows 1..np, after the class token.
        Gemm.sgemm(false, true, np, hidden, kdim, 1f, cols, 0, kdim, patchWeight, 0, kdim, 0f, x, hidden, hidden);
        System.arraycopy(classEmbedding, 0, x, 0, hidden);
        VisionOps.add(x, 0, positions, 0, tokens * hidden);
        VisionOps.layerNorm(x, 0, x, 0, tokens, hidden, preLnW, preLnB, cfg.layerNormEps());
        return x;
    }

    /** Buffers reused across the layers of one forward pass. */
    private final class Scratch {
        final float[] ln = new float[tokens * hidden];
        final float[] q = new float[tokens * hidden], k = new float[tokens * hidden], v = new float[tokens * hidden];
        final float[] attn = new float[tokens * hidden];
        final float[] mlp = new float[tokens * cfg.intermediateSize()];
        final float[] out = new float[tokens * hidden];
    }

    /** x += out_proj(attn(LN1 x)); x += fc2(act(fc1(LN2 x))). */
    private void layer(Layer L, float[] x, Scratch s) {
        float eps = cfg.layerNormEps();
        int t = tokens, h = hidden, inter = cfg.intermediateSize();
        VisionOps.layerNorm(x, 0, s.ln, 0, t, h, L.ln1W, L.ln1B, eps);
        L.q.forward(s.ln, 0, s.q, 0, t);
        L.k.forward(s.ln, 0, s.k, 0, t);
        L.v.forward(s.ln, 0, s.v, 0, t);
        attention(s.q, s.k, s.v, s.attn);
        L.o.forward(s.attn, 0, s.out, 0, t);
        VisionOps.add(x, 0, s.out, 0, t * h);
        VisionOps.layerNorm(x, 0, s.ln, 0, t, h, L.ln2W, L.ln2B, eps);
        L.fc1.forward(s.ln, 0, s.mlp, 0, t);
        if (cfg.hiddenAct().equals("quick_gelu")) VisionOps.quickGelu(s.mlp, 0, t * inter);
        else VisionOps.gelu(s.mlp, 0, t * inter);
        L.fc2.forward(s.mlp, 0, s.out, 0, t);
        VisionOps.add(x, 0, s.out, 0, t * h);
    }

    /** y[rows, out] = x[rows, in] W^T + b, W stored [out, in]. */
    static void linear(float[] x, int rows, int in, float[] w, float[] b, int out, float[] y) {
        Gemm.sgemm(false, true, rows, out, in, 1f, x, 0, in, w, 0, in, 0f, y, 0, out);
        if (b != null) VisionOps.addBias(y, 0, rows, out, b);
    }

    /** Unmasked multi-head attention, scale head_dim^-0.5; q, k, v and out are [tokens, hidden]. */
    private void attention(float[] q, float[] k, float[] v, float[] out) {
        int t = tokens, h = hidden, heads = cfg.numHeads(), hd = cfg.headDim();
        float scale = (float) (1.0 / Math.sqrt(hd));
        Parallel.forRange(heads, head -> {
            float[] scores = new float[t * t];
            int o = head * hd;
            Gemm.sgemm(false, true, t, t, hd, scale, q, o, h, k, o, h, 0f, scores, 0, t);
            VisionOps.softmax(scores, 0, t, t, t);
            Gemm.sgemm(false, false, t, hd, t, 1f, scores, 0, t, v, o, h, 0f, out, o, h);
        });
    }
}
