package casp.model;

import casp.io.BadInputException;
import casp.io.ChatTemplate;
import casp.io.ModelFolder;
import casp.io.Tokenizer;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * LLaVA (Hugging Face LlavaForConditionalGeneration): a CLIP vision tower and projector
 * ({@link LlavaImageEncoder}) whose outputs replace the image placeholder positions of a Llama
 * decoder's input embeddings ({@link LlamaModel}).
 *
 * <p>Text goes through the model's chat template and tokenizer; each {@code <image>} placeholder
 * id is expanded to {@link LlavaImageEncoder#tokensPerImage()} copies (as HF processors do) and
 * the embeddings at those positions are replaced by the projected image features, image by image,
 * in order. Positions run 0..L-1 over the whole expanded sequence.
 */
public final class LlavaModel {
    private final ModelFolder folder;
    private final LlamaModel language;
    private final LlavaImageEncoder vision;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int imageTokenId;

    public LlavaModel(ModelFolder folder, LlamaModel language, LlavaImageEncoder vision, Tokenizer tokenizer,
                      ChatTemplate template) {
        this.folder = folder;
        this.language = language;
        this.vision = vision;
        this.tokenizer = tokenizer;
        this.template = template;
        this.imageTokenId = folder.config().llava().imageTokenIndex();
        if (vision.embeddingSize() != language.hiddenSize())
            throw new BadInputException(folder.dir() + ": projector outputs " + vision.embeddingSize()
                    + " values per token but the language model's hidden size is " + language.hiddenSize());
        int seq = folder.config().llava().imageSeqLength();
        // Only an explicit image_seq_length can disagree (the default is the patch count, which
        // "full" exceeds by the class token).
        if (folder.config().raw().has("image_seq_length") && seq != vision.tokensPerImage())
            throw new BadInputException(folder.config().file() + ": image_seq_length " + seq + " but the vision tower gives "
                    + vision.tokensPerImage() + " tokens per image (vision_feature_select_strategy "
                    + folder.config().llava().featureSelectStrategy() + ")");
    }

    /** Loads a LLaVA model folder: weights, tokenizer, chat template, preprocessor config. */
    public static LlavaModel load(Path dir) {
        return load(ModelFolder.open(dir));
    }

    public static LlavaModel load(ModelFolder folder) {
        if (!folder.config().isLlava())
            throw new BadInputException(folder.dir() + ": not a LLaVA model (model_type '" + folder.config().modelType() + "')");
        return new LlavaModel(folder, LlamaModel.load(folder), LlavaImageEncoder.load(folder), Tokenizer.load(folder.dir()),
                ChatTemplate.load(folder.dir()));
    }

    public ModelFolder folder() { return folder; }

    /** The Llama decoder (its linear layers are what compression replaces). */
    public LlamaModel language() { return language; }

    public LlavaImageEncoder vision() { return vision; }

    public Tokenizer tokenizer() { return tokenizer; }

    public ChatTemplate chatTemplate() { return template; }

    /** The id of the image placeholder token (config image_token_index). */
    public int imageTokenId() { return imageTokenId; }

    // ------------------------------------------------------------------ prompts

    /** Renders messages with the chat template (no tokenization). */
    public String render(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
        return template.render(messages, addGenerationPrompt);
    }

    /**
     * Tokenizes rendered text as HF's processor does (the tokenizer's BOS added, unless the
     * template already wrote it) and expands each image placeholder to the image's visual tokens.
     */
    public int[] tokenize(String text) {
        String bos = template.specialToken("bos_token");
        boolean hasBos = bos != null && !bos.isEmpty() && text.startsWith(bos);
        int[] ids = tokenizer.encode(text, !hasBos);
        return Tokenizer.expandToken(ids, imageTokenId, vision.tokensPerImage());
    }

    /** One user turn with an image and a question: [image, text]. */
    public List<ChatTemplate.Message> userTurn(String question) {
        return List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text(question))));
    }

    /** Expanded prompt ids of messages (chat template + tokenizer + image expansion). */
    public int[] promptIds(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
        return tokenize(render(messages, addGenerationPrompt));
    }

    // ------------------------------------------------------------------ forward

    /** Projected visual tokens of an image file ([tokensPerImage, hidden]). */
    public float[] encodeImage(Path image) {
        return vision.encode(image);
    }

    /**
     * Input embeddings [ids.length, hidden] of expanded ids, with the image positions replaced by
     * the given images' features in order (one float[tokensPerImage * hidden] per image).
     */
    public float[] embed(int[] ids, List<float[]> images) {
        int per = vision.tokensPerImage(), h = language.hiddenSize();
        int positions = 0;
        for (int id : ids) if (id == imageTokenId) positions++;
        if (positions != images.size() * per)
            throw new BadInputException("the prompt has " + positions + " image positions (" + (double) positions / per
                    + " images of " + per + " tokens) but " + images.size() + " image(s) were given");
        // The placeholder's own embedding row is never used (and may lie past the table), so embed a valid id there.
        int[] safe = ids.clone();
        for (int i = 0; i < safe.length; i++) if (safe[i] == imageTokenId) safe[i] = 0;
        float[] x = language.embed(safe);
        int img = 0, row = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] != imageTokenId) continue;
            float[] f = images.get(img);
            if (f.length != per * h) throw new IllegalArgumentException("image features must be [" + per + ", " + h + "]");
            System.arraycopy(f, row * h, x, i * h, h);
            if (++row == per) {
                row = 0;
                img++;
            }
        }
        return x;
    }

    /** Logits of every position ([T, vocab]) or of the last one ([vocab]) for expanded ids and images. */
    public float[] forward(int[] ids, List<float[]> images, boolean allPositions) {
        return language.forwardEmbeddings(embed(ids, images), ids.length, null, allPositions);
    }

    /** Hooks variant of {@link #forward(int[], List, boolean)} (calibration captures layer inputs). */
    public float[] forward(int[] ids, List<float[]> images, boolean allPositions, ForwardHooks hooks) {
        return language.forwardEmbeddings(embed(ids, images), ids.length, null, allPositions, hooks);
    }

    /** Result of greedy generation: the new ids (including a final EOS if one was produced) and their text. */
    public record Answer(int[] ids, String text) {}

    /**
     * Greedy answer after expanded prompt ids: stops at an EOS id of the tokenizer, after
     * maxNewTokens, or once the decoded text contains one of stopStrings (the token that completes
     * it is kept). The text is decoded without special tokens and stripped of surrounding spaces.
     */
    public Answer generate(int[] promptIds, List<float[]> images, int maxNewTokens, List<String> stopStrings) {
        float[] x = embed(promptIds, images);
        int[] eos = tokenizer.eosIds();
        StringBuilder text = new StringBuilder();
        var stream = tokenizer.stream(promptIds);
        IntPredicate onToken = stopStrings.isEmpty() ? null : id -> {
            text.append(stream.push(id));
            for (String s : stopStrings) if (text.indexOf(s) >= 0) return false;
            return true;
        };
        int[] ids = new Generator(language).generate(x, promptIds.length, maxNewTokens, Sampler.greedy(), eos, onToken);
        int end = ids.length;
        while (end > 0 && contains(eos, ids[end - 1])) end--;
        return new Answer(ids, tokenizer.decode(Arrays.copyOf(ids, end), true).strip());
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) if (x == v) return true;
        return false;
    }
}
