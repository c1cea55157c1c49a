package casp.cli;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.io.TokenizerStream;
import casp.model.Generator;
import casp.model.LlamaModel;
import casp.model.Sampler;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp generate --model DIR --prompt TEXT`: text generation with a KV cache, greedy at
 * temperature 0, streamed to stdout as it is produced. What the prompt becomes (with an image for
 * LLaVA models) is decided in {@link #promptEmbeddings}.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt (greedy at temperature 0, seeded sampling otherwise), "
                + "streamed as it is produced.")
public class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder")
    protected Path modelDir;

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "",
            description = "prompt text (default: empty, i.e. only the tokenizer's BOS)")
    protected String prompt;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "256",
            description = "new tokens to generate at most (default ${DEFAULT-VALUE}; capped by the model's max positions)")
    protected int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "sampling temperature; 0 = greedy (default ${DEFAULT-VALUE})")
    protected float temperature;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "random seed for sampling (default ${DEFAULT-VALUE})")
    protected long seed;

    @Mixin
    WeightsOption weights = new WeightsOption();

    @Option(names = "--json", description = "print only one JSON object at the end: prompt_ids, ids (generated), text")
    protected boolean json;

    @Option(names = "--image", paramLabel = "FILE",
            description = "image for a LLaVA model: the prompt becomes the question of a chat-template user turn "
                    + "[image, text] with the generation prompt (the model's chat_template, else LLaVA-1.5's format)")
    protected Path image;

    @Option(names = "--video", paramLabel = "FILE",
            description = "video for a llava_next_video model: a folder of frame images, an animated GIF or an H.264 MP4; "
                    + "the prompt becomes a user turn [video, text] (with --image: [image, video, text])")
    protected Path video;

    @Option(names = "--frames", paramLabel = "N", defaultValue = "0",
            description = "frames sampled uniformly from --video (default: the processor config's num_frames, else 8)")
    protected int frames;

    /** Set when --image or --video is given: the LLaVA runtime that builds the prompt and splices the media in. */
    private casp.model.LlavaModel llava;
    private casp.model.LlavaModel.Media media = casp.model.LlavaModel.Media.NONE;

    /** The prompt as the language model sees it: T rows of input embeddings. */
    protected record Prompt(float[] embeddings, int length) {}

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 0) throw new BadInputException("--max-tokens must be >= 0, got " + maxTokens);
        if (!(temperature >= 0) || Float.isInfinite(temperature))
            throw new BadInputException("--temperature must be a finite number >= 0, got " + temperature);
        long loadStart = System.nanoTime();
        double loadSeconds = -1;
        ModelFolder folder = weights.open(modelDir);
        Tokenizer tokenizer = Tokenizer.load(folder.dir());
        LlamaModel model = LlamaModel.load(folder);
        if (frames < 0) throw new BadInputException("--frames must be positive, got " + frames);
        if (frames > 0 && video == null) throw new BadInputException("--frames needs --video");
        if (image != null || video != null) {
            String flag = image != null ? "--image" : "--video";
            if (!folder.config().isLlava())
                throw new BadInputException(flag + " needs a LLaVA model; " + modelDir + " is '" + folder.config().modelType() + "'");
            llava = new casp.model.LlavaModel(folder, model, casp.model.LlavaImageEncoder.load(folder), tokenizer,
                    casp.io.ChatTemplate.load(folder.dir()));
            if (video != null && !llava.takesVideo())
                throw new BadInputException("--video needs a llava_next_video model; " + modelDir + " is '"
                        + folder.config().modelType() + "'");
            loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            media = llava.encode(image, video, frames);
        }
        if (loadSeconds < 0) loadSeconds = (System.nanoTime() - loadStart) / 1e9;
        int[] promptIds = llava != null ? llava.promptIds(llava.userTurn(prompt, image != null, video != null), true, media)
                : tokenizer.encode(prompt, true);
        if (promptIds.length == 0)
            throw new BadInputException("--prompt is empty and the tokenizer of " + modelDir + " adds no BOS: nothing to start from");
        Prompt p = promptEmbeddings(folder, model, tokenizer, promptIds);
        if (p.length() > model.config().maxPositions())
            throw new BadInputException("the prompt has " + p.length() + " tokens, more than the "
                    + model.config().maxPositions() + " positions of " + modelDir + " (max_position_embeddings)");

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        TokenizerStream stream = tokenizer.stream(promptIds);
        StringBuilder text = new StringBuilder();
        if (!json) {
            out.print(tokenizer.decode(promptIds));
            out.flush();
        }
        Generator gen = new Generator(model);
        int[] ids = gen.generate(p.embeddings(), p.length(), maxTokens, new Sampler(temperature, seed),
                stopIds(tokenizer, model), id -> {
                    String piece = stream.push(id);
                    text.append(piece);
                    if (!json && !piece.isEmpty()) {
                        out.print(piece);
                        out.flush();
                    }
                    return true;
                });
        String tail = stream.flush();
        text.append(tail);
        Generator.Stats s = gen.lastStats();
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("prompt", prompt);
            var pa = o.putArray("prompt_ids");
            for (int id : promptIds) pa.add(id);
            var ia = o.putArray("ids");
            for (int id : ids) ia.add(id);
            o.put("text", text.toString());
            o.put("prefill_tokens_per_s", s.prefillTokensPerSecond());
            o.put("decode_tokens_per_s", s.decodeSteps() > 0 ? s.decodeTokensPerSecond() : 0);
            o.put("load_seconds", loadSeconds);
            o.put("weights", WeightsOption.describe(folder));
            if (llava != null) {
                o.put("visual_tokens", visualTokens(promptIds));
                o.put("vision_tower_s", llava.towerSeconds());
                o.put("projector_s", llava.projectorSeconds());
                o.put("language_model_s", s.prefillSeconds() + s.decodeSeconds());
            }
            out.println(m.writeValueAsString(o));
        } else {
            out.println(tail);
            if (!Progress.quiet())
                System.err.printf(Locale.ROOT, "[load %.1f s (16-bit weights: %s); %d prompt tokens, prefill %.1f tok/s; %d new tokens, decode %.1f tok/s]%n",
                        loadSeconds, WeightsOption.describe(folder), s.promptTokens(), s.prefillTokensPerSecond(), ids.length,
                        s.decodeSteps() > 0 ? s.decodeTokensPerSecond() : 0.0);
            if (llava != null && !Progress.quiet())
                System.err.printf(Locale.ROOT, "[%d visual tokens; vision tower %.2f s, projector %.2f s, language model %.2f s "
                                + "(prefill %.2f s, decode %.2f s)]%n", visualTokens(promptIds), llava.towerSeconds(),
                        llava.projectorSeconds(), s.prefillSeconds() + s.decodeSeconds(), s.prefillSeconds(), s.decodeSeconds());
        }
        return 0;
    }

    /**
     * Builds the input embeddings of the prompt. The default is the token embeddings of
     * promptIds; a multimodal variant replaces image-token positions with image features here.
     */
    protected Prompt promptEmbeddings(ModelFolder folder, LlamaModel model, Tokenizer tokenizer, int[] promptIds) {
        if (llava != null) return new Prompt(llava.embed(promptIds, media), promptIds.length);
        return new Prompt(model.embed(promptIds), promptIds.length);
    }

    /** Prompt positions that hold an image or video token. */
    private int visualTokens(int[] promptIds) {
        int n = 0;
        for (int id : promptIds) if (id == llava.imageTokenId() || id == llava.videoTokenId()) n++;
        return n;
    }

    /** Ids that end generation: the tokenizer's EOS ids, else the config's eos_token_id. */
    protected int[] stopIds(Tokenizer tokenizer, LlamaModel model) {
        int[] eos = tokenizer.eosIds();
        return eos.length > 0 ? eos : new int[]{model.config().eosTokenId()};
    }
}
