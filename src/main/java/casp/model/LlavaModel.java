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
 * id is expanded to as many copies as the image has visual tokens (as HF processors do: a fixed
 * {@link LlavaImageEncoder#tokensPerImage()} for LLaVA-1.5, a count that depends on the image's
 * size for LLaVA-NeXT, {@link LlavaNextEncoder}), each {@code <video>} placeholder (LLaVA-NeXT-Video)
 * to frames x pooled tokens, and the embeddings at those positions are replaced by the projected
 * features, image by image and video by video, in order. Positions run 0..L-1 over the whole
 * expanded sequence.
 */
public final class LlavaModel {
    private final ModelFolder folder;
    private final LlamaModel language;
    private final LlavaImageEncoder vision;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int imageTokenId;
    private final LlavaNextEncoder next;
    private final int videoTokenId;
    private long towerNanos, projectorNanos;
    /** Frames per video set by the caller (--frames), or 0 for the processor config's. */
    private int framesPerVideo;

    /**
     * The encoded visual inputs of one prompt in placeholder order: each image's and each video's
     * visual tokens, float[tokens * hidden].
     */
    public record Media(List<float[]> images, List<float[]> videos) {
        public static final Media NONE = new Media(List.of(), List.of());

        public Media {
            images = List.copyOf(images);
            videos = List.copyOf(videos);
        }

        public static Media images(List<float[]> images) {
            return new Media(images, List.of());
        }
    }

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
        this.next = folder.config().isLlavaNext() ? LlavaNextEncoder.load(folder, vision) : null;
        this.videoTokenId = next != null && next.settings().video() ? next.settings().videoTokenIndex() : -1;
        if (next != null) return; // LLaVA-NeXT's token count depends on each image's size
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

    /** The LLaVA-NeXT image / video encoder, or null for LLaVA-1.5. */
    public LlavaNextEncoder next() { return next; }

    /** True when the model takes video input (llava_next_video). */
    public boolean takesVideo() { return videoTokenId >= 0; }

    /** The id of the video placeholder token (config video_token_index), or -1 without video input. */
    public int videoTokenId() { return videoTokenId; }

    /** Frames sampled from a video by default: those set by {@link #setFramesPerVideo}, else the processor config's num_frames, else 8. */
    public int defaultFrames() {
        if (framesPerVideo > 0) return framesPerVideo;
        return next != null ? next.defaultFrames() : 8;
    }

    /** Samples n frames from every video this model encodes without a count of its own (0: the processor config's). */
    public void setFramesPerVideo(int n) {
        if (n < 0) throw new BadInputException("--frames must be positive, got " + n);
        if (n > 0 && !takesVideo())
            throw new BadInputException("--frames: " + folder.dir() + " is a " + folder.config().modelType() + " model, which takes no video input");
        framesPerVideo = n;
    }

    /** Seconds spent in the vision tower and in the projector since the model was loaded. */
    public double towerSeconds() { return towerNanos / 1e9 + (next != null ? next.towerSeconds() : 0); }

    public double projectorSeconds() { return projectorNanos / 1e9 + (next != null ? next.projectorSeconds() : 0); }

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
        int[] ids = encodeText(text);
        if (next != null) {
            for (int id : ids)
                if (id == imageTokenId || id == videoTokenId)
                    throw new IllegalStateException("LLaVA-NeXT placeholders expand by the encoded media: use tokenize(text, media)");
            return ids;
        }
        return Tokenizer.expandToken(ids, imageTokenId, vision.tokensPerImage());
    }

    private int[] encodeText(String text) {
        String bos = template.specialToken("bos_token");
        boolean hasBos = bos != null && !bos.isEmpty() && text.startsWith(bos);
        return tokenizer.encode(text, !hasBos);
    }

    /**
     * Tokenizes rendered text and expands the k-th image (video) placeholder to the k-th encoded
     * image's (video's) token count.
     */
    public int[] tokenize(String text, Media media) {
        int h = language.hiddenSize();
        return tokenize(text, media.images().stream().mapToInt(f -> f.length / h).toArray(),
                media.videos().stream().mapToInt(f -> f.length / h).toArray());
    }

    /** Tokenizes rendered text, the k-th image (video) placeholder expanded to imageTokens[k] (videoTokens[k]) copies. */
    public int[] tokenize(String text, int[] imageTokens, int[] videoTokens) {
        int[] ids = encodeText(text);
        int img = 0, vid = 0, total = ids.length;
        for (int id : ids) {
            if (id == imageTokenId) {
                if (img == imageTokens.length) throw placeholderMismatch("image", imageTokens.length, ids, imageTokenId);
                total += imageTokens[img++] - 1;
            } else if (id == videoTokenId) {
                if (vid == videoTokens.length) throw placeholderMismatch("video", videoTokens.length, ids, videoTokenId);
                total += videoTokens[vid++] - 1;
            }
        }
        if (img != imageTokens.length) throw placeholderMismatch("image", imageTokens.length, ids, imageTokenId);
        if (vid != videoTokens.length) throw placeholderMismatch("video", videoTokens.length, ids, videoTokenId);
        int[] out = new int[total];
        int o = 0;
        img = 0;
        vid = 0;
        for (int id : ids) {
            int copies = id == imageTokenId ? imageTokens[img++] : id == videoTokenId ? videoTokens[vid++] : 1;
            for (int k = 0; k < copies; k++) out[o++] = id;
        }
        return out;
    }

    /** Visual tokens an image file becomes (LLaVA-NeXT: by its size; the image is decoded, not encoded). */
    public int imageTokens(Path image) {
        if (next == null) return vision.tokensPerImage();
        casp.io.ImagePreprocessor.RgbImage img = casp.io.ImagePreprocessor.decode(image);
        return next.imageTokens(img.height(), img.width());
    }

    /** Visual tokens a video of the given number of frames becomes (frames <= 0: the default). */
    public int videoTokens(int frames) {
        if (!takesVideo()) throw new BadInputException(folder.dir() + ": a " + folder.config().modelType() + " model takes no video input");
        return (frames > 0 ? frames : defaultFrames()) * next.tokensPerFrame();
    }

    /**
     * Expanded prompt ids of messages with the placeholders expanded for the given image / video
     * files (either may be null), without running the vision tower.
     */
    public int[] promptIds(List<ChatTemplate.Message> messages, boolean addGenerationPrompt, Path image, Path video) {
        return tokenize(render(messages, addGenerationPrompt), image == null ? new int[0] : new int[]{imageTokens(image)},
                video == null ? new int[0] : new int[]{videoTokens(0)});
    }

    /** True when id is an image or video placeholder position. */
    public boolean isVisual(int id) {
        return id == imageTokenId || id == videoTokenId;
    }

    private static BadInputException placeholderMismatch(String what, int given, int[] ids, int tokenId) {
        int n = 0;
        for (int id : ids) if (id == tokenId) n++;
        return new BadInputException("the prompt has " + n + " " + what + " placeholder(s) but " + given + " " + what + "(s) were given");
    }

    /** One user turn with an image and a question: [image, text]. */
    public List<ChatTemplate.Message> userTurn(String question) {
        return List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text(question))));
    }

    /** Expanded prompt ids of messages (chat template + tokenizer + image expansion). */
    public int[] promptIds(List<ChatTemplate.Message> messages, boolean addGenerationPrompt) {
        return tokenize(render(messages, addGenerationPrompt));
    }

    /** Expanded prompt ids of messages whose placeholders expand by the encoded media. */
    public int[] promptIds(List<ChatTemplate.Message> messages, boolean addGenerationPrompt, Media media) {
        return tokenize(render(messages, addGenerationPrompt), media);
    }

    /** One user turn with an image or a video (either may be null) and a question. */
    public List<ChatTemplate.Message> userTurn(String question, boolean image, boolean video) {
        List<ChatTemplate.Part> parts = new java.util.ArrayList<>();
        if (image) parts.add(ChatTemplate.Part.image());
        if (video) parts.add(ChatTemplate.Part.video());
        parts.add(ChatTemplate.Part.text(question));
        return List.of(new ChatTemplate.Message("user", parts));
    }

    // ------------------------------------------------------------------ forward

    /** Projected visual tokens of an image file ([tokens, hidden]; LLaVA-1.5: tokensPerImage tokens). */
    public float[] encodeImage(Path image) {
        if (next != null) return next.encodeImage(casp.io.ImagePreprocessor.decode(image));
        float[] pixels = vision.preprocessor().process(image);
        long t0 = System.nanoTime();
        float[] features = vision.selectedFeatures(pixels);
        long t1 = System.nanoTime();
        float[] tokens = vision.projector().forward(features, vision.tokensPerImage());
        towerNanos += t1 - t0;
        projectorNanos += System.nanoTime() - t1;
        return tokens;
    }

    /** Projected visual tokens of a video ([frames * pooled tokens, hidden]); frames <= 0 takes the default. */
    public float[] encodeVideo(Path video, int frames) {
        if (!takesVideo())
            throw new BadInputException(folder.dir() + ": a " + folder.config().modelType() + " model takes no video input");
        return next.encodeVideo(casp.io.VideoFrames.read(video, frames > 0 ? frames : defaultFrames()));
    }

    /** The media of one record: its image and / or video (either may be null), encoded. */
    public Media encode(Path image, Path video, int frames) {
        return new Media(image == null ? List.of() : List.of(encodeImage(image)),
                video == null ? List.of() : List.of(encodeVideo(video, frames)));
    }

    /**
     * Input embeddings [ids.length, hidden] of expanded ids, with the image positions replaced by
     * the given images' features in order (one float[tokensPerImage * hidden] per image).
     */
    public float[] embed(int[] ids, List<float[]> images) {
        if (next != null || videoTokenId >= 0) return embed(ids, Media.images(images));
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

    /**
     * Input embeddings [ids.length, hidden] of expanded ids, with the image positions replaced by
     * the images' rows and the video positions by the videos' rows, each in order.
     */
    public float[] embed(int[] ids, Media media) {
        int h = language.hiddenSize();
        int[] safe = ids.clone();
        for (int i = 0; i < safe.length; i++) if (safe[i] == imageTokenId || safe[i] == videoTokenId) safe[i] = 0;
        float[] x = language.embed(safe);
        fill(x, ids, imageTokenId, media.images(), "image", h);
        if (videoTokenId >= 0) fill(x, ids, videoTokenId, media.videos(), "video", h);
        else if (!media.videos().isEmpty()) throw new BadInputException("this model takes no video input");
        return x;
    }

    /** Copies the rows of the given features, one after another, to the positions holding tokenId. */
    private static void fill(float[] x, int[] ids, int tokenId, List<float[]> features, String what, int h) {
        int positions = 0, rows = 0;
        for (int id : ids) if (id == tokenId) positions++;
        for (float[] f : features) {
            if (f.length % h != 0) throw new IllegalArgumentException(what + " features must be [tokens, " + h + "]");
            rows += f.length / h;
        }
        if (positions != rows)
            throw new BadInputException("the prompt has " + positions + " " + what + " positions but the " + features.size()
                    + " " + what + "(s) given have " + rows + " visual tokens");
        int item = 0, row = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] != tokenId) continue;
            while (row * h == features.get(item).length) {
                item++;
                row = 0;
            }
            System.arraycopy(features.get(item), row++ * h, x, i * h, h);
        }
    }

    /** Logits of every position ([T, vocab]) or of the last one ([vocab]) for expanded ids and images. */
    public float[] forward(int[] ids, List<float[]> images, boolean allPositions) {
        return language.forwardEmbeddings(embed(ids, images), ids.length, null, allPositions);
    }

    /** Logits of every position ([T, vocab]) or of the last one ([vocab]) for expanded ids and their media. */
    public float[] forward(int[] ids, Media media, boolean allPositions) {
        return language.forwardEmbeddings(embed(ids, media), ids.length, null, allPositions);
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
        return generate(promptIds, Media.images(images), maxNewTokens, stopStrings);
    }

    /** {@link #generate(int[], List, int, List)} with images and videos. */
    public Answer generate(int[] promptIds, Media media, int maxNewTokens, List<String> stopStrings) {
        float[] x = embed(promptIds, media);
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
