package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * A Hugging Face config.json: a Llama-family language model (llama, mistral, qwen2) or a LLaVA
 * (llava: text_config + vision_config). Unsupported architectures are a {@link BadInputException}
 * naming the file and the model_type.
 */
public record ModelConfig(Path file, String modelType, TextConfig text, VisionConfig vision, LlavaSettings llava,
                          JsonNode quantization, JsonNode raw) {

    public static final Set<String> TEXT_TYPES = Set.of("llama", "mistral", "qwen2");

    /** LLaVA-1.5 (llava), LLaVA-NeXT (llava_next: anyres images) and LLaVA-NeXT-Video (llava_next_video). */
    public static final Set<String> LLAVA_TYPES = Set.of("llava", "llava_next", "llava_next_video");

    /** Language-model hyper-parameters. */
    public record TextConfig(String modelType, int hiddenSize, int intermediateSize, int numLayers, int numHeads,
                             int numKvHeads, int headDim, int vocabSize, int maxPositions, float rmsNormEps,
                             double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings,
                             boolean attentionBias, String hiddenAct, int bosTokenId, int eosTokenId) {
        public int qDim() { return numHeads * headDim; }
        public int kvDim() { return numKvHeads * headDim; }
    }

    /** rope_scaling of type "llama3" or "linear" (only factor used); null when the config has none. */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositions) {}

    /** CLIP vision tower hyper-parameters. */
    public record VisionConfig(int hiddenSize, int imageSize, int patchSize, int numChannels, int numLayers,
                               int numHeads, int intermediateSize, String hiddenAct, float layerNormEps) {
        public int numPatches() { return (imageSize / patchSize) * (imageSize / patchSize); }
        public int headDim() { return hiddenSize / numHeads; }
    }

    /** LLaVA glue: where image features come from and how they enter the language model. */
    public record LlavaSettings(int imageTokenIndex, int visionFeatureLayer, String featureSelectStrategy,
                                String projectorAct, boolean projectorBias, int imageSeqLength) {}

    public boolean isLlava() {
        return llava != null;
    }

    /** True for llava_next and llava_next_video (anyres images with image_newline). */
    public boolean isLlavaNext() {
        return modelType.equals("llava_next") || modelType.equals("llava_next_video");
    }

    public static ModelConfig load(Path dir) {
        Path file = dir.resolve("config.json");
        if (!Files.isRegularFile(file)) throw new BadInputException(dir + ": not a model folder (no config.json)");
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new BadInputException(file + ": not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) throw new BadInputException(file + ": not a JSON object");
        String type = CaspOnlyFolder.readAs(root.path("model_type").asText("")); // casp_llama: a casp-only folder
        ConfigChecks.checkIntegers(file, root, LLAVA_TYPES.contains(type));
        JsonNode quant = root.get("quantization_config");
        if (LLAVA_TYPES.contains(type)) {
            JsonNode tc = root.get("text_config"), vc = root.get("vision_config");
            if (tc == null || vc == null) throw new BadInputException(file + ": llava config needs text_config and vision_config");
            String textType = tc.path("model_type").asText("llama");
            if (!TEXT_TYPES.contains(textType))
                throw new BadInputException(file + ": unsupported text_config.model_type '" + textType + "' (supported: llama, mistral, qwen2)");
            String vtype = vc.path("model_type").asText("clip_vision_model");
            if (!vtype.equals("clip_vision_model"))
                throw new BadInputException(file + ": unsupported vision_config.model_type '" + vtype + "' (supported: clip_vision_model)");
            if (root.path("vision_feature_layer").isArray())
                throw new BadInputException(file + ": vision_feature_layer as a list of layers is not supported (give one layer index)");
            TextConfig text = parseText(file, tc, textType, root);
            VisionConfig vision = parseVision(file, vc);
            LlavaSettings ls = new LlavaSettings(
                    root.path("image_token_index").asInt(32000),
                    root.path("vision_feature_layer").asInt(-2),
                    root.path("vision_feature_select_strategy").asText("default"),
                    root.path("projector_hidden_act").asText("gelu"),
                    root.path("multimodal_projector_bias").asBoolean(true),
                    root.path("image_seq_length").asInt(vision.numPatches()));
            if (!ls.featureSelectStrategy().equals("default") && !ls.featureSelectStrategy().equals("full"))
                throw new BadInputException(file + ": unsupported vision_feature_select_strategy '" + ls.featureSelectStrategy() + "'");
            return checked(new ModelConfig(file, type, text, vision, ls, quant, root));
        }
        if (!TEXT_TYPES.contains(type))
            throw new BadInputException(file + ": unsupported model_type '" + type + "' (supported: llama, mistral, qwen2, llava, llava_next, llava_next_video)");
        return checked(new ModelConfig(file, type, parseText(file, root, type, root), null, null, quant, root));
    }

    private static ModelConfig checked(ModelConfig c) {
        ConfigChecks.checkValues(c.file(), c);
        return c;
    }

    private static int req(Path file, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || !v.canConvertToInt()) throw new BadInputException(file + ": missing or invalid \"" + key + "\"");
        return v.asInt();
    }

    private static TextConfig parseText(Path file, JsonNode n, String type, JsonNode root) {
        int hidden = req(file, n, "hidden_size");
        int heads = req(file, n, "num_attention_heads");
        int kvHeads = n.path("num_key_value_heads").asInt(heads);
        int headDim = n.hasNonNull("head_dim") ? n.get("head_dim").asInt() : hidden / heads;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new BadInputException(file + ": num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
        RopeScaling scaling = null;
        JsonNode rs = n.get("rope_scaling");
        if (rs != null && rs.isObject()) {
            String rt = rs.has("rope_type") ? rs.get("rope_type").asText() : rs.path("type").asText("");
            if (rt.equals("llama3")) {
                scaling = new RopeScaling(rt, rs.path("factor").asDouble(8.0), rs.path("low_freq_factor").asDouble(1.0),
                        rs.path("high_freq_factor").asDouble(4.0), rs.path("original_max_position_embeddings").asInt(8192));
            } else if (rt.equals("linear")) {
                double factor = rs.path("factor").asDouble(Double.NaN);
                if (!(factor > 0)) throw new BadInputException(file + ": rope_scaling type linear needs a positive \"factor\"");
                scaling = new RopeScaling(rt, factor, 0, 0, 0);
            } else if (!rt.equals("default") && !rt.isEmpty()) {
                throw new BadInputException(file + ": unsupported rope_scaling type '" + rt + "' (supported: llama3, linear)");
            }
        }
        String act = n.path("hidden_act").asText("silu");
        if (!act.equals("silu")) throw new BadInputException(file + ": unsupported hidden_act '" + act + "' (supported: silu)");
        // Qwen2 has q/k/v biases without saying so; llama says attention_bias.
        boolean bias = type.equals("qwen2") || n.path("attention_bias").asBoolean(false);
        boolean tie = n.has("tie_word_embeddings") ? n.get("tie_word_embeddings").asBoolean()
                : root.path("tie_word_embeddings").asBoolean(false);
        return new TextConfig(type, hidden, req(file, n, "intermediate_size"), req(file, n, "num_hidden_layers"),
                heads, kvHeads, headDim, req(file, n, "vocab_size"), n.path("max_position_embeddings").asInt(2048),
                (float) n.path("rms_norm_eps").asDouble(1e-6), n.path("rope_theta").asDouble(10000.0), scaling, tie, bias,
                act, n.path("bos_token_id").asInt(1), n.path("eos_token_id").isArray()
                        ? n.get("eos_token_id").get(0).asInt() : n.path("eos_token_id").asInt(2));
    }

    private static VisionConfig parseVision(Path file, JsonNode n) {
        String act = n.path("hidden_act").asText("quick_gelu");
        if (!act.equals("quick_gelu") && !act.equals("gelu"))
            throw new BadInputException(file + ": unsupported vision hidden_act '" + act + "' (supported: quick_gelu, gelu)");
        return new VisionConfig(req(file, n, "hidden_size"), req(file, n, "image_size"), req(file, n, "patch_size"),
                n.path("num_channels").asInt(3), req(file, n, "num_hidden_layers"), req(file, n, "num_attention_heads"),
                req(file, n, "intermediate_size"), act, (float) n.path("layer_norm_eps").asDouble(1e-5));
    }
}
