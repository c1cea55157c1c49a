package casp.synth;

import casp.io.BadInputException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The config.json of published checkpoints, by a short name (values as the Hugging Face hub
 * publishes them, with the defaults those files leave implicit written out), for shape twins of
 * models that cannot be downloaded here.
 */
public final class TwinConfigs {
    private TwinConfigs() {}

    private static final String VICUNA_7B_TEXT = """
            {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 32064,
             "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
             "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "rope_scaling": null, "hidden_act": "silu",
             "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
             "tie_word_embeddings": false, "initializer_range": 0.02, "torch_dtype": "float16"}""";

    private static final String CLIP_L_336 = """
            {"model_type": "clip_vision_model", "hidden_size": 1024, "image_size": 336, "patch_size": 14,
             "num_channels": 3, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
             "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "projection_dim": 768,
             "initializer_range": 0.02, "initializer_factor": 1.0}""";

    private static final String PINPOINTS = "[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]";

    private static final Map<String, String> CONFIGS = new LinkedHashMap<>();

    static {
        CONFIGS.put("llama-2-7b", """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000,
                 "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
                 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "rope_scaling": null, "hidden_act": "silu",
                 "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2, "pretraining_tp": 1,
                 "tie_word_embeddings": false, "initializer_range": 0.02, "torch_dtype": "float16"}""");
        CONFIGS.put("llava-1.5-7b", llava("LlavaForConditionalGeneration", "llava", VICUNA_7B_TEXT, "float16",
                "\"image_token_index\": 32000, \"pad_token_id\": 32001"));
        CONFIGS.put("llava-1.5-13b", llava("LlavaForConditionalGeneration", "llava", """
                {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 32064,
                 "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
                 "num_attention_heads": 40, "num_key_value_heads": 40, "max_position_embeddings": 4096,
                 "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "rope_scaling": null, "hidden_act": "silu",
                 "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
                 "tie_word_embeddings": false, "initializer_range": 0.02, "torch_dtype": "float16"}""", "float16",
                "\"image_token_index\": 32000, \"pad_token_id\": 32001"));
        CONFIGS.put("llava-v1.6-vicuna-7b", llava("LlavaNextForConditionalGeneration", "llava_next", VICUNA_7B_TEXT, "float16",
                "\"image_token_index\": 32000, \"pad_token_id\": 32001, \"use_image_newline_parameter\": true, "
                        + "\"image_grid_pinpoints\": " + PINPOINTS));
        CONFIGS.put("llava-next-video-7b", llava("LlavaNextVideoForConditionalGeneration", "llava_next_video",
                VICUNA_7B_TEXT.replace("\"float16\"", "\"bfloat16\""), "bfloat16",
                "\"image_token_index\": 32001, \"video_token_index\": 32000, \"pad_token_id\": 32002, "
                        + "\"use_image_newline_parameter\": true, \"spatial_pool_mode\": \"average\", \"spatial_pool_stride\": 2, "
                        + "\"image_grid_pinpoints\": " + PINPOINTS));
    }

    private static String llava(String architecture, String type, String text, String dtype, String extra) {
        return "{\"architectures\": [\"" + architecture + "\"], \"model_type\": \"" + type + "\", "
                + "\"ignore_index\": -100, \"projector_hidden_act\": \"gelu\", \"multimodal_projector_bias\": true, "
                + "\"vision_feature_layer\": -2, \"vision_feature_select_strategy\": \"default\", "
                + "\"tie_word_embeddings\": false, \"vocab_size\": 32064, \"torch_dtype\": \"" + dtype + "\", "
                + extra + ", \"text_config\": " + text + ", \"vision_config\": " + CLIP_L_336 + "}";
    }

    /** The built-in names. */
    public static Set<String> names() {
        return CONFIGS.keySet();
    }

    /** A fresh copy of the named config. */
    public static ObjectNode get(String name) {
        String json = CONFIGS.get(name);
        if (json == null) throw new BadInputException("--like: unknown model '" + name + "' (known: " + String.join(", ", CONFIGS.keySet()) + ")");
        try {
            return (ObjectNode) new ObjectMapper().readTree(json);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("built-in config " + name + " is not valid JSON", e);
        }
    }
}
