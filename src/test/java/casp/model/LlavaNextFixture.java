package casp.model;

import casp.TestData;
import casp.io.ModelConfig;
import casp.io.SafeTensorsWriter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Tiny random-weight llava_next / llava_next_video folders written by test code: a 2-layer CLIP
 * tower (hidden 12, 20 px tiles of 4 px patches: a 5 x 5 grid, so pooling with stride 2 drops a
 * row and a column), the projector, image_newline, a 2-layer Llama (hidden 16, GQA 4 / 2 heads;
 * the video model with linear RoPE scaling, factor 2), tiny-llava's tokenizer with {@code <video>}
 * added, a chat template that renders image and video parts, and the processor configs. Either
 * the llava-hf tensor names (language_model.model.*, vision_tower.*, image_newline) or the newer
 * ones (model.language_model.*, model.vision_tower.*, model.image_newline).
 */
public final class LlavaNextFixture {
    static final int IMAGE_ID = 403, VIDEO_ID = 405, VOCAB = 406;
    static final int V_HIDDEN = 12, V_INTER = 24, V_LAYERS = 2, V_HEADS = 2, TILE = 20, PATCH = 4;
    static final int T_HIDDEN = 16, T_INTER = 24, T_LAYERS = 2, T_HEADS = 4, T_KV = 2, HEAD_DIM = 4;
    public static final int[][] PINPOINTS = {{20, 40}, {40, 20}, {40, 40}, {60, 20}, {20, 60}};
    static final int FRAMES = 4;
    static final double[] MEAN = {0.48145466, 0.4578275, 0.40821073}, STD = {0.26862954, 0.26130258, 0.27577711};

    static final String TEMPLATE = "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
            + "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
            + "{% for c in m['content'] %}{% if c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
            + "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
            + "{% else %}ASSISTANT: {% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
            + "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

    private LlavaNextFixture() {}

    static ModelConfig.TextConfig textConfig(boolean video) {
        return SyntheticModel.config("llama", T_HIDDEN, T_INTER, T_LAYERS, T_HEADS, T_KV, HEAD_DIM, VOCAB, 4096, 10000.0,
                video ? new ModelConfig.RopeScaling("linear", 2.0, 0, 0, 0) : null, false);
    }

    /** Writes a folder; poolMode is spatial_pool_mode of the video model ("average" or "max"). */
    public static Path write(Path dir, boolean video, boolean newNames, String poolMode, long seed) throws IOException {
        Files.createDirectories(dir);
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, float[]> t = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        String vp = newNames ? "model.vision_tower.vision_model." : "vision_tower.vision_model.";
        String pp = newNames ? "model.multi_modal_projector." : "multi_modal_projector.";
        int h = V_HIDDEN, tokens = (TILE / PATCH) * (TILE / PATCH) + 1;
        put(t, shapes, vp + "embeddings.patch_embedding.weight", r, 0.3, h, 3, PATCH, PATCH);
        put(t, shapes, vp + "embeddings.class_embedding", r, 0.5, h);
        put(t, shapes, vp + "embeddings.position_embedding.weight", r, 0.5, tokens, h);
        norm(t, shapes, vp + "pre_layrnorm", r, h);
        for (int i = 0; i < V_LAYERS; i++) {
            String l = vp + "encoder.layers." + i + ".";
            norm(t, shapes, l + "layer_norm1", r, h);
            for (String n : new String[]{"q_proj", "k_proj", "v_proj", "out_proj"}) {
                put(t, shapes, l + "self_attn." + n + ".weight", r, 0.4, h, h);
                put(t, shapes, l + "self_attn." + n + ".bias", r, 0.1, h);
            }
            norm(t, shapes, l + "layer_norm2", r, h);
            put(t, shapes, l + "mlp.fc1.weight", r, 0.4, V_INTER, h);
            put(t, shapes, l + "mlp.fc1.bias", r, 0.1, V_INTER);
            put(t, shapes, l + "mlp.fc2.weight", r, 0.3, h, V_INTER);
            put(t, shapes, l + "mlp.fc2.bias", r, 0.1, h);
        }
        norm(t, shapes, vp + "post_layernorm", r, h);
        put(t, shapes, pp + "linear_1.weight", r, 0.4, T_HIDDEN, h);
        put(t, shapes, pp + "linear_1.bias", r, 0.1, T_HIDDEN);
        put(t, shapes, pp + "linear_2.weight", r, 0.3, T_HIDDEN, T_HIDDEN);
        put(t, shapes, pp + "linear_2.bias", r, 0.1, T_HIDDEN);
        put(t, shapes, newNames ? "model.image_newline" : "image_newline", r, 1.0, T_HIDDEN);
        ModelConfig.TextConfig tc = textConfig(video);
        for (var e : SyntheticModel.tensors(tc, seed + 1).entrySet()) {
            String name = e.getKey().equals("lm_head.weight") ? (newNames ? "lm_head.weight" : "language_model.lm_head.weight")
                    : (newNames ? "model.language_model." : "language_model.model.") + e.getKey().substring("model.".length());
            t.put(name, e.getValue());
            shapes.put(name, textShape(tc, e.getKey(), e.getValue().length));
        }
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (var e : t.entrySet()) w.addFloats(e.getKey(), shapes.get(e.getKey()), e.getValue());
        w.write(dir.resolve("model.safetensors"));
        writeJson(dir, video, poolMode, tc);
        return dir;
    }

    private static long[] textShape(ModelConfig.TextConfig c, String name, int n) {
        if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight") || name.endsWith(".bias")) return new long[]{n};
        long rows = name.contains("embed_tokens") || name.equals("lm_head.weight") ? c.vocabSize()
                : name.contains("down_proj") || name.contains("o_proj") ? c.hiddenSize()
                : name.contains("gate_proj") || name.contains("up_proj") ? c.intermediateSize()
                : name.contains("q_proj") ? c.qDim() : c.kvDim();
        return new long[]{rows, n / rows};
    }

    private static void put(Map<String, float[]> t, Map<String, long[]> shapes, String name, SplittableRandom r, double scale,
                            long... shape) {
        int n = 1;
        for (long s : shape) n *= (int) s;
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((2 * r.nextDouble() - 1) * scale);
        t.put(name, a);
        shapes.put(name, shape);
    }

    private static void norm(Map<String, float[]> t, Map<String, long[]> shapes, String prefix, SplittableRandom r, int n) {
        float[] g = new float[n], b = new float[n];
        for (int i = 0; i < n; i++) {
            g[i] = (float) (1 + 0.2 * (2 * r.nextDouble() - 1));
            b[i] = (float) (0.1 * (2 * r.nextDouble() - 1));
        }
        t.put(prefix + ".weight", g);
        shapes.put(prefix + ".weight", new long[]{n});
        t.put(prefix + ".bias", b);
        shapes.put(prefix + ".bias", new long[]{n});
    }

    private static void writeJson(Path dir, boolean video, String poolMode, ModelConfig.TextConfig tc) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode c = json.createObjectNode();
        c.putArray("architectures").add(video ? "LlavaNextVideoForConditionalGeneration" : "LlavaNextForConditionalGeneration");
        c.put("model_type", video ? "llava_next_video" : "llava_next");
        c.put("image_token_index", IMAGE_ID);
        if (video) {
            c.put("video_token_index", VIDEO_ID);
            c.put("spatial_pool_mode", poolMode);
            c.put("spatial_pool_stride", 2);
        }
        c.put("projector_hidden_act", "gelu");
        c.put("vision_feature_layer", -2);
        c.put("vision_feature_select_strategy", "default");
        c.put("tie_word_embeddings", false);
        ArrayNode pins = c.putArray("image_grid_pinpoints");
        for (int[] p : PINPOINTS) pins.addArray().add(p[0]).add(p[1]);
        ObjectNode t = c.putObject("text_config");
        t.put("model_type", "llama");
        t.put("hidden_size", tc.hiddenSize());
        t.put("intermediate_size", tc.intermediateSize());
        t.put("num_hidden_layers", tc.numLayers());
        t.put("num_attention_heads", tc.numHeads());
        t.put("num_key_value_heads", tc.numKvHeads());
        t.put("head_dim", tc.headDim());
        t.put("vocab_size", tc.vocabSize());
        t.put("max_position_embeddings", tc.maxPositions());
        t.put("rms_norm_eps", (double) tc.rmsNormEps());
        t.put("rope_theta", tc.ropeTheta());
        if (video) t.putObject("rope_scaling").put("type", "linear").put("factor", 2.0);
        ObjectNode v = c.putObject("vision_config");
        v.put("model_type", "clip_vision_model");
        v.put("hidden_size", V_HIDDEN);
        v.put("image_size", TILE);
        v.put("patch_size", PATCH);
        v.put("num_hidden_layers", V_LAYERS);
        v.put("num_attention_heads", V_HEADS);
        v.put("intermediate_size", V_INTER);
        v.put("hidden_act", "quick_gelu");
        v.put("layer_norm_eps", 1e-5);
        json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), c);

        ObjectNode p = json.createObjectNode();
        p.put("image_processor_type", "LlavaNextImageProcessor");
        p.putObject("size").put("shortest_edge", TILE);
        p.putObject("crop_size").put("height", TILE).put("width", TILE);
        p.put("resample", 3);
        p.set("image_grid_pinpoints", pins.deepCopy());
        json.writeValue(dir.resolve("preprocessor_config.json").toFile(), p);
        if (video) {
            ObjectNode vp = json.createObjectNode();
            vp.put("image_processor_type", "LlavaNextVideoImageProcessor");
            vp.putObject("size").put("shortest_edge", TILE);
            vp.putObject("crop_size").put("height", TILE).put("width", TILE);
            vp.put("resample", 3);
            vp.put("num_frames", FRAMES);
            json.writeValue(dir.resolve("video_preprocessor_config.json").toFile(), vp);
        }

        Path tinyModel = TestData.file("models/tiny-llava/model");
        ObjectNode tok = (ObjectNode) json.readTree(tinyModel.resolve("tokenizer.json").toFile());
        ObjectNode added = ((ArrayNode) tok.get("added_tokens")).addObject();
        added.put("id", VIDEO_ID).put("content", "<video>").put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
        json.writeValue(dir.resolve("tokenizer.json").toFile(), tok);
        ObjectNode tcfg = (ObjectNode) json.readTree(tinyModel.resolve("tokenizer_config.json").toFile());
        tcfg.put("chat_template", TEMPLATE);
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(), tcfg);
    }

    /** A random RGB image of the given size written as PNG. */
    public static Path randomPng(Path file, int width, int height, long seed) throws IOException {
        SplittableRandom r = new SplittableRandom(seed);
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) for (int x = 0; x < width; x++) img.setRGB(x, y, r.nextInt(1 << 24));
        Files.createDirectories(file.getParent());
        ImageIO.write(img, "png", file.toFile());
        return file;
    }
}
