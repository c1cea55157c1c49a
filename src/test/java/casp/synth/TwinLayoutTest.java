package casp.synth;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The built-in configs give the published checkpoints' tensors: names and shapes of
 * llava-hf/llava-1.5-7b-hf (as its model.safetensors.index.json lists them) and the parameter
 * counts the Hugging Face hub reports.
 */
class TwinLayoutTest {
    static long params(String name) {
        long n = 0;
        for (TwinLayout.Tensor t : TwinLayout.of(TwinConfigs.get(name), name)) n += t.numel();
        return n;
    }

    @Test
    void parameterCountsOfThePublishedModels() {
        assertEquals(7_063_427_072L, params("llava-1.5-7b"));
        assertEquals(6_738_415_616L, params("llama-2-7b"));
        assertEquals(13_351_494_656L, params("llava-1.5-13b"));
        // LLaVA-NeXT adds image_newline [4096] to the LLaVA-1.5 layout.
        assertEquals(7_063_427_072L + 4096, params("llava-v1.6-vicuna-7b"));
        assertEquals(7_063_427_072L + 4096, params("llava-next-video-7b"));
    }

    /** The published llava-1.5-7b tensors outside the repeated layers, and those of one layer of each stack. */
    static Map<String, List<Long>> publishedLlava157b() {
        Map<String, List<Long>> m = new LinkedHashMap<>();
        String v = "vision_tower.vision_model.";
        m.put(v + "embeddings.class_embedding", List.of(1024L));
        m.put(v + "embeddings.patch_embedding.weight", List.of(1024L, 3L, 14L, 14L));
        m.put(v + "embeddings.position_embedding.weight", List.of(577L, 1024L));
        m.put(v + "pre_layrnorm.weight", List.of(1024L));
        m.put(v + "pre_layrnorm.bias", List.of(1024L));
        m.put(v + "post_layernorm.weight", List.of(1024L));
        m.put(v + "post_layernorm.bias", List.of(1024L));
        String e = v + "encoder.layers.23.";
        for (String p : new String[]{"q_proj", "k_proj", "v_proj", "out_proj"}) {
            m.put(e + "self_attn." + p + ".weight", List.of(1024L, 1024L));
            m.put(e + "self_attn." + p + ".bias", List.of(1024L));
        }
        m.put(e + "mlp.fc1.weight", List.of(4096L, 1024L));
        m.put(e + "mlp.fc1.bias", List.of(4096L));
        m.put(e + "mlp.fc2.weight", List.of(1024L, 4096L));
        m.put(e + "mlp.fc2.bias", List.of(1024L));
        for (String ln : new String[]{"layer_norm1", "layer_norm2"}) {
            m.put(e + ln + ".weight", List.of(1024L));
            m.put(e + ln + ".bias", List.of(1024L));
        }
        m.put("multi_modal_projector.linear_1.weight", List.of(4096L, 1024L));
        m.put("multi_modal_projector.linear_1.bias", List.of(4096L));
        m.put("multi_modal_projector.linear_2.weight", List.of(4096L, 4096L));
        m.put("multi_modal_projector.linear_2.bias", List.of(4096L));
        m.put("language_model.model.embed_tokens.weight", List.of(32064L, 4096L));
        m.put("language_model.model.norm.weight", List.of(4096L));
        m.put("language_model.lm_head.weight", List.of(32064L, 4096L));
        String l = "language_model.model.layers.31.";
        for (String p : new String[]{"q_proj", "k_proj", "v_proj", "o_proj"}) m.put(l + "self_attn." + p + ".weight", List.of(4096L, 4096L));
        m.put(l + "mlp.gate_proj.weight", List.of(11008L, 4096L));
        m.put(l + "mlp.up_proj.weight", List.of(11008L, 4096L));
        m.put(l + "mlp.down_proj.weight", List.of(4096L, 11008L));
        m.put(l + "input_layernorm.weight", List.of(4096L));
        m.put(l + "post_attention_layernorm.weight", List.of(4096L));
        return m;
    }

    @Test
    void llava157bNamesAndShapes() {
        List<TwinLayout.Tensor> layout = TwinLayout.of(TwinConfigs.get("llava-1.5-7b"), "llava-1.5-7b");
        Map<String, List<Long>> got = new LinkedHashMap<>();
        for (TwinLayout.Tensor t : layout) {
            List<Long> shape = new ArrayList<>();
            for (long d : t.shape()) shape.add(d);
            got.put(t.name(), shape);
        }
        // 24 vision layers x 16 tensors + 7 vision, 4 projector, 32 x 9 decoder + 3 language model
        assertEquals(24 * 16 + 7 + 4 + 32 * 9 + 3, got.size());
        publishedLlava157b().forEach((name, shape) -> assertEquals(shape, got.get(name), name));
        for (String name : got.keySet()) {
            String generic = name.replaceAll("layers\\.\\d+\\.", "layers.N.");
            boolean known = publishedLlava157b().keySet().stream().anyMatch(p -> p.replaceAll("layers\\.\\d+\\.", "layers.N.").equals(generic));
            assertTrue(known, "unexpected tensor " + name);
        }
        // weights random, norm scales 1, biases 0
        for (TwinLayout.Tensor t : layout) {
            TwinLayout.Fill want = t.name().endsWith(".bias") ? TwinLayout.Fill.ZEROS
                    : t.name().contains("norm") || t.name().contains("layrnorm") ? TwinLayout.Fill.ONES : TwinLayout.Fill.NORMAL;
            assertEquals(want, t.fill(), t.name() + " " + Arrays.toString(t.shape()));
        }
    }
}
