package casp.synth;

import casp.io.BadInputException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The tensors a Hugging Face checkpoint of a config holds, in the names, shapes and order
 * transformers saves them: plain Llama-family names (model.*, lm_head.weight) for a text model,
 * the llava-hf names (vision_tower.vision_model.*, multi_modal_projector.*, language_model.*) for
 * llava, llava_next and llava_next_video (the last two add image_newline [hidden]). Each tensor says
 * how a random twin fills it: normal(0, initializer_range) for weights, 1 for norm scales, 0 for biases.
 */
public final class TwinLayout {
    private TwinLayout() {}

    public enum Fill { NORMAL, ONES, ZEROS }

    /** One tensor: name, shape, how it is filled and the standard deviation of NORMAL. */
    public record Tensor(String name, long[] shape, Fill fill, double std) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    static final Set<String> TEXT_TYPES = Set.of("llama", "mistral", "qwen2");
    static final Set<String> LLAVA_TYPES = Set.of("llava", "llava_next", "llava_next_video");

    /** The tensors of a checkpoint with config root (a parsed config.json). */
    public static List<Tensor> of(JsonNode root, String where) {
        String type = root.path("model_type").asText("");
        List<Tensor> out = new ArrayList<>();
        if (TEXT_TYPES.contains(type)) {
            text(root, root, type, "model.", "lm_head.weight", out, where);
            return out;
        }
        if (!LLAVA_TYPES.contains(type))
            throw new BadInputException(where + ": unsupported model_type '" + type + "' (supported: llama, mistral, qwen2, llava, llava_next, llava_next_video)");
        JsonNode tc = root.get("text_config"), vc = root.get("vision_config");
        if (tc == null || vc == null) throw new BadInputException(where + ": " + type + " config needs text_config and vision_config");
        String textType = tc.path("model_type").asText("llama");
        if (!TEXT_TYPES.contains(textType))
            throw new BadInputException(where + ": unsupported text_config.model_type '" + textType + "'");
        int textHidden = req(tc, "hidden_size", where);
        int visionHidden = req(vc, "hidden_size", where);
        double std = root.path("initializer_range").asDouble(tc.path("initializer_range").asDouble(0.02));
        if (!type.equals("llava")) out.add(new Tensor("image_newline", new long[]{textHidden}, Fill.NORMAL, std));
        vision(vc, "vision_tower.vision_model.", out, where);
        boolean bias = root.path("multimodal_projector_bias").asBoolean(true);
        linear("multi_modal_projector.linear_1", textHidden, visionHidden, bias, std, out);
        linear("multi_modal_projector.linear_2", textHidden, textHidden, bias, std, out);
        text(tc, root, textType, "language_model.model.", "language_model.lm_head.weight", out, where);
        return out;
    }

    private static void text(JsonNode c, JsonNode root, String type, String prefix, String head, List<Tensor> out, String where) {
        int d = req(c, "hidden_size", where), inter = req(c, "intermediate_size", where);
        int layers = req(c, "num_hidden_layers", where), vocab = req(c, "vocab_size", where);
        int heads = req(c, "num_attention_heads", where), kvHeads = c.path("num_key_value_heads").asInt(heads);
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : d / heads;
        double std = c.path("initializer_range").asDouble(0.02);
        boolean qkvBias = type.equals("qwen2") || c.path("attention_bias").asBoolean(false);
        boolean tied = c.has("tie_word_embeddings") ? c.get("tie_word_embeddings").asBoolean() : root.path("tie_word_embeddings").asBoolean(false);
        out.add(new Tensor(prefix + "embed_tokens.weight", new long[]{vocab, d}, Fill.NORMAL, std));
        for (int i = 0; i < layers; i++) {
            String p = prefix + "layers." + i + ".";
            linear(p + "self_attn.q_proj", (long) heads * headDim, d, qkvBias, std, out);
            linear(p + "self_attn.k_proj", (long) kvHeads * headDim, d, qkvBias, std, out);
            linear(p + "self_attn.v_proj", (long) kvHeads * headDim, d, qkvBias, std, out);
            linear(p + "self_attn.o_proj", d, (long) heads * headDim, false, std, out);
            linear(p + "mlp.gate_proj", inter, d, false, std, out);
            linear(p + "mlp.up_proj", inter, d, false, std, out);
            linear(p + "mlp.down_proj", d, inter, false, std, out);
            out.add(new Tensor(p + "input_layernorm.weight", new long[]{d}, Fill.ONES, 0));
            out.add(new Tensor(p + "post_attention_layernorm.weight", new long[]{d}, Fill.ONES, 0));
        }
        out.add(new Tensor(prefix + "norm.weight", new long[]{d}, Fill.ONES, 0));
        if (!tied) out.add(new Tensor(head, new long[]{vocab, d}, Fill.NORMAL, std));
    }

    /** A CLIP vision transformer (CLIPVisionModel's vision_model). */
    private static void vision(JsonNode c, String p, List<Tensor> out, String where) {
        String type = c.path("model_type").asText("clip_vision_model");
        if (!type.equals("clip_vision_model"))
            throw new BadInputException(where + ": unsupported vision_config.model_type '" + type + "' (supported: clip_vision_model)");
        int d = req(c, "hidden_size", where), inter = req(c, "intermediate_size", where), layers = req(c, "num_hidden_layers", where);
        int image = req(c, "image_size", where), patch = req(c, "patch_size", where), channels = c.path("num_channels").asInt(3);
        double std = c.path("initializer_range").asDouble(0.02);
        long positions = (long) (image / patch) * (image / patch) + 1;
        out.add(new Tensor(p + "embeddings.class_embedding", new long[]{d}, Fill.NORMAL, std));
        out.add(new Tensor(p + "embeddings.patch_embedding.weight", new long[]{d, channels, patch, patch}, Fill.NORMAL, std));
        out.add(new Tensor(p + "embeddings.position_embedding.weight", new long[]{positions, d}, Fill.NORMAL, std));
        layerNorm(p + "pre_layrnorm", d, out);
        for (int i = 0; i < layers; i++) {
            String l = p + "encoder.layers." + i + ".";
            linear(l + "self_attn.k_proj", d, d, true, std, out);
            linear(l + "self_attn.v_proj", d, d, true, std, out);
            linear(l + "self_attn.q_proj", d, d, true, std, out);
            linear(l + "self_attn.out_proj", d, d, true, std, out);
            layerNorm(l + "layer_norm1", d, out);
            linear(l + "mlp.fc1", inter, d, true, std, out);
            linear(l + "mlp.fc2", d, inter, true, std, out);
            layerNorm(l + "layer_norm2", d, out);
        }
        layerNorm(p + "post_layernorm", d, out);
    }

    private static void linear(String name, long outDim, long inDim, boolean bias, double std, List<Tensor> out) {
        out.add(new Tensor(name + ".weight", new long[]{outDim, inDim}, Fill.NORMAL, std));
        if (bias) out.add(new Tensor(name + ".bias", new long[]{outDim}, Fill.ZEROS, 0));
    }

    private static void layerNorm(String name, int d, List<Tensor> out) {
        out.add(new Tensor(name + ".weight", new long[]{d}, Fill.ONES, 0));
        out.add(new Tensor(name + ".bias", new long[]{d}, Fill.ZEROS, 0));
    }

    private static int req(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || !v.canConvertToInt() || v.asInt() <= 0) throw new BadInputException(where + ": missing or invalid \"" + key + "\"");
        return v.asInt();
    }
}
