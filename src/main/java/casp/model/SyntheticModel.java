package casp.model;

import casp.io.ModelConfig;
import casp.io.SafeTensorsWriter;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Llama-shaped models with random weights, for tests and benchmarks: a config, its tensors (named
 * as in a plain Llama folder), an in-memory {@link LlamaModel}, or a Hugging Face folder on disk.
 * Weights are scaled by 1/sqrt(fan-in) so activations stay of order one through the layers.
 */
public final class SyntheticModel {
    private SyntheticModel() {}

    /** A text config with the given shape; eps 1e-5, bos 1, eos 2. scaling may be null. */
    public static ModelConfig.TextConfig config(String modelType, int hidden, int intermediate, int layers, int heads,
                                                int kvHeads, int headDim, int vocab, int maxPositions, double ropeTheta,
                                                ModelConfig.RopeScaling scaling, boolean tieEmbeddings) {
        return new ModelConfig.TextConfig(modelType, hidden, intermediate, layers, heads, kvHeads, headDim, vocab,
                maxPositions, 1e-5f, ropeTheta, scaling, tieEmbeddings, modelType.equals("qwen2"), "silu", 1, 2);
    }

    /** Random tensors for config c (biases on q/k/v when c.attentionBias()), deterministic in seed. */
    public static Map<String, float[]> tensors(ModelConfig.TextConfig c, long seed) {
        return tensors(c, seed, true);
    }

    /** tensors(c, seed), with or without the float weights of the decoder linears (the rest is the same). */
    private static Map<String, float[]> tensors(ModelConfig.TextConfig c, long seed, boolean linears) {
        SplittableRandom r = new SplittableRandom(seed);
        int d = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), inter = c.intermediateSize(), vocab = c.vocabSize();
        Map<String, float[]> t = new LinkedHashMap<>();
        t.put("model.embed_tokens.weight", uniform(r, (long) vocab * d, 1f));
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            t.put(p + "input_layernorm.weight", around(r, d, 1f, 0.2f));
            if (linears) {
                t.put(p + "self_attn.q_proj.weight", uniform(r, (long) qd * d, fan(d)));
                t.put(p + "self_attn.k_proj.weight", uniform(r, (long) kvd * d, fan(d)));
                t.put(p + "self_attn.v_proj.weight", uniform(r, (long) kvd * d, fan(d)));
            }
            if (c.attentionBias()) {
                t.put(p + "self_attn.q_proj.bias", uniform(r, qd, 0.5f));
                t.put(p + "self_attn.k_proj.bias", uniform(r, kvd, 0.5f));
                t.put(p + "self_attn.v_proj.bias", uniform(r, kvd, 0.5f));
            }
            if (linears) t.put(p + "self_attn.o_proj.weight", uniform(r, (long) d * qd, fan(qd)));
            t.put(p + "post_attention_layernorm.weight", around(r, d, 1f, 0.2f));
            if (linears) {
                t.put(p + "mlp.gate_proj.weight", uniform(r, (long) inter * d, fan(d)));
                t.put(p + "mlp.up_proj.weight", uniform(r, (long) inter * d, fan(d)));
                t.put(p + "mlp.down_proj.weight", uniform(r, (long) d * inter, fan(inter)));
            }
        }
        t.put("model.norm.weight", around(r, d, 1f, 0.2f));
        if (!c.tieWordEmbeddings()) t.put("lm_head.weight", uniform(r, (long) vocab * d, fan(d)));
        return t;
    }

    /** A random in-memory model. */
    public static LlamaModel create(ModelConfig.TextConfig c, long seed) {
        return LlamaModel.fromTensors(c, tensors(c, seed));
    }

    /**
     * A random in-memory model whose decoder linears come from linears (e.g. random packed codes for
     * throughput benchmarks of the compressed runtime); embeddings, norms and the head are random
     * float32 as in {@link #create}.
     */
    public static LlamaModel create(ModelConfig.TextConfig c, long seed, LlamaModel.LinearSource linears) {
        return LlamaModel.fromTensors(c, tensors(c, seed, false), linears);
    }

    /**
     * Writes a Hugging Face folder (config.json, model.safetensors) holding tensors in dtype
     * (F32, F16 or BF16). Values that dtype cannot hold exactly are rounded to nearest even.
     */
    public static void write(Path dir, ModelConfig.TextConfig c, Map<String, float[]> tensors, DType dtype) throws IOException {
        Files.createDirectories(dir);
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.metadata("format", "pt");
        for (var e : tensors.entrySet()) {
            float[] a = e.getValue();
            long[] shape = shapeOf(c, e.getKey(), a.length);
            switch (dtype) {
                case F32 -> w.addFloats(e.getKey(), shape, a);
                case F16 -> w.addF16(e.getKey(), shape, a);
                case BF16 -> w.add(e.getKey(), DType.BF16, shape, out -> {
                    ByteBuffer b = ByteBuffer.allocate(a.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : a) b.putShort(DType.floatToBf16(v));
                    b.flip();
                    while (b.hasRemaining()) out.write(b);
                });
                default -> throw new IllegalArgumentException("unsupported dtype " + dtype);
            }
        }
        w.write(dir.resolve("model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        o.putArray("architectures").add(c.modelType().equals("qwen2") ? "Qwen2ForCausalLM" : "LlamaForCausalLM");
        o.put("model_type", c.modelType());
        o.put("hidden_size", c.hiddenSize());
        o.put("intermediate_size", c.intermediateSize());
        o.put("num_hidden_layers", c.numLayers());
        o.put("num_attention_heads", c.numHeads());
        o.put("num_key_value_heads", c.numKvHeads());
        o.put("head_dim", c.headDim());
        o.put("vocab_size", c.vocabSize());
        o.put("max_position_embeddings", c.maxPositions());
        o.put("rms_norm_eps", (double) c.rmsNormEps());
        o.put("rope_theta", c.ropeTheta());
        if (c.ropeScaling() == null) o.putNull("rope_scaling");
        else {
            ObjectNode rs = o.putObject("rope_scaling");
            rs.put("rope_type", c.ropeScaling().type());
            rs.put("factor", c.ropeScaling().factor());
            rs.put("low_freq_factor", c.ropeScaling().lowFreqFactor());
            rs.put("high_freq_factor", c.ropeScaling().highFreqFactor());
            rs.put("original_max_position_embeddings", c.ropeScaling().originalMaxPositions());
        }
        o.put("hidden_act", "silu");
        if (!c.modelType().equals("qwen2")) o.put("attention_bias", c.attentionBias());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("torch_dtype", dtype == DType.F32 ? "float32" : dtype == DType.F16 ? "float16" : "bfloat16");
        o.put("bos_token_id", c.bosTokenId());
        o.put("eos_token_id", c.eosTokenId());
        Path tmp = dir.resolve("config.json.tmp");
        json.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), o);
        Files.move(tmp, dir.resolve("config.json"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static long[] shapeOf(ModelConfig.TextConfig c, String name, int n) {
        if (name.endsWith(".bias") || name.endsWith("norm.weight")) return new long[]{n};
        int in = name.contains("o_proj") ? c.qDim() : name.contains("down_proj") ? c.intermediateSize() : c.hiddenSize();
        return new long[]{n / in, in};
    }

    private static float fan(int in) {
        return (float) Math.sqrt(3.0 / in);   // uniform(-a, a) with variance 1/in
    }

    private static float[] uniform(SplittableRandom r, long n, float a) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = (float) ((2 * r.nextDouble() - 1) * a);
        return x;
    }

    private static float[] around(SplittableRandom r, int n, float center, float spread) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = center + (float) ((2 * r.nextDouble() - 1) * spread);
        return x;
    }
}
