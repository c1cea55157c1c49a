package casp.io;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Hugging Face model folder: its config, its tensors, and where each component's tensors live.
 * Accepts the plain Llama names (model.*, lm_head.*), the llava-hf names
 * (language_model.model.*, language_model.lm_head.*, vision_tower.vision_model.*,
 * multi_modal_projector.*) and the newer transformers names (model.language_model.*, lm_head.*,
 * model.vision_tower.vision_model.*, model.multi_modal_projector.*).
 */
public final class ModelFolder {
    private final Path dir;
    private final ModelConfig config;
    private final WeightStore weights;
    private final String textPrefix;
    private final String lmHead;
    private final String visionPrefix;
    private final String projectorPrefix;

    private ModelFolder(Path dir, ModelConfig config, WeightStore weights, String textPrefix, String lmHead,
                        String visionPrefix, String projectorPrefix) {
        this.dir = dir;
        this.config = config;
        this.weights = weights;
        this.textPrefix = textPrefix;
        this.lmHead = lmHead;
        this.visionPrefix = visionPrefix;
        this.projectorPrefix = projectorPrefix;
    }

    public static ModelFolder open(Path dir) {
        if (!Files.isDirectory(dir)) throw new BadInputException(dir + ": no such model folder");
        ModelConfig config;
        try {
            config = ModelConfig.load(dir);
        } catch (BadInputException configError) {
            // The config's sizes are checked against the weight files: a damaged weights file is named as such.
            if (Files.exists(dir.resolve("model.safetensors")) || Files.exists(dir.resolve("model.safetensors.index.json")))
                WeightStore.open(dir);
            throw configError;
        }
        WeightStore w = WeightStore.open(dir);
        String text = firstPrefix(w, "embed_tokens.weight", "model.", "language_model.model.", "model.language_model.");
        if (text == null)
            throw new BadInputException(dir + ": cannot find the token embeddings (model.embed_tokens.weight, "
                    + "language_model.model.embed_tokens.weight or model.language_model.embed_tokens.weight)");
        String head = null;
        for (String h : new String[]{"lm_head", "language_model.lm_head"}) {
            if (w.has(h + ".weight") || w.has(h + ".qweight")) head = h + ".weight"; // .qweight: a GPTQ-quantized head
        }
        if (head == null && !config.text().tieWordEmbeddings())
            throw new BadInputException(dir + ": no lm_head.weight and tie_word_embeddings is false");
        String vision = null, projector = null;
        if (config.isLlava()) {
            vision = firstPrefix(w, "embeddings.patch_embedding.weight", "vision_tower.vision_model.", "model.vision_tower.vision_model.");
            projector = firstPrefix(w, "linear_1.weight", "multi_modal_projector.", "model.multi_modal_projector.");
            if (vision == null) throw new BadInputException(dir + ": llava model without vision tower tensors (vision_tower.vision_model.*)");
            if (projector == null) throw new BadInputException(dir + ": llava model without projector tensors (multi_modal_projector.linear_1.*)");
        }
        layerCount(config, w, text + "layers.", config.text().numLayers(), "num_hidden_layers");
        if (vision != null) layerCount(config, w, vision + "encoder.layers.", config.vision().numLayers(), "vision_config.num_hidden_layers");
        return new ModelFolder(dir, config, w, text, head, vision, projector);
    }

    /** The weights must hold exactly the layers the config counts: fewer fail later by name, more would be silently dropped. */
    private static void layerCount(ModelConfig config, WeightStore w, String prefix, int layers, String field) {
        int highest = -1;
        for (String name : w.names()) {
            if (!name.startsWith(prefix)) continue;
            int end = name.indexOf('.', prefix.length());
            if (end < 0) continue;
            try {
                highest = Math.max(highest, Integer.parseInt(name.substring(prefix.length(), end)));
            } catch (NumberFormatException ignored) {
                // not a numbered layer
            }
        }
        if (highest >= layers)
            throw new BadInputException(config.file() + ": \"" + field + "\" is " + layers + " but the weights hold layer "
                    + highest + " (" + prefix + highest + ".*)");
    }

    private static String firstPrefix(WeightStore w, String suffix, String... prefixes) {
        for (String p : prefixes) if (w.has(p + suffix)) return p;
        return null;
    }

    public Path dir() { return dir; }

    public ModelConfig config() { return config; }

    public WeightStore weights() { return weights; }

    /** The same folder with its 16-bit tensors kept as p says at run time ({@link WeightStore#placed}); a folder opens with MAP. */
    public ModelFolder placed(WeightPlacement p) {
        WeightStore w = weights.placed(p);
        return w == weights ? this : new ModelFolder(dir, config, w, textPrefix, lmHead, visionPrefix, projectorPrefix);
    }

    /** Prefix of the decoder's tensors, e.g. "model." or "language_model.model.". */
    public String textPrefix() { return textPrefix; }

    /** Name of the decoder layer tensor, e.g. layer(3, "self_attn.q_proj.weight"). */
    public String layer(int index, String suffix) {
        return textPrefix + "layers." + index + "." + suffix;
    }

    /**
     * The output head tensor, or the embedding when the head is tied. A quantized head is named
     * as its .weight too, which the folder does not hold: its tensors are NAME.qweight, ...
     */
    public String lmHead() { return lmHead != null ? lmHead : textPrefix + "embed_tokens.weight"; }

    /** True when the output head shares the embedding matrix. */
    public boolean headTied() { return lmHead == null; }

    /** Prefix of the CLIP vision tower's tensors (null for a text-only model). */
    public String visionPrefix() { return visionPrefix; }

    /** Prefix of the projector's tensors (null for a text-only model). */
    public String projectorPrefix() { return projectorPrefix; }

    /** A file of the folder (tokenizer.json, preprocessor_config.json, ...). */
    public Path file(String name) { return dir.resolve(name); }
}
