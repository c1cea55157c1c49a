package casp.cli;

import casp.eval.KlDivergence;
import casp.eval.Perplexity;
import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp eval ppl --model DIR --text FILE [--ctx N]`: perplexity by ALGORITHMS.md section 9
 * (the file read as one UTF-8 string and encoded once, with the tokenizer's BOS; non-overlapping
 * windows of ctx tokens, the remainder dropped; positions 1..ctx-1 of each window scored).
 */
@Command(name = "ppl", mixinStandardHelpOptions = true,
        description = "Perplexity of a text file: encoded once, cut into non-overlapping windows of --ctx tokens "
                + "(remainder dropped), tokens 1..ctx-1 of each window scored.")
public final class EvalPplCommand implements Callable<Integer> {
    @Mixin
    WeightsOption weights = new WeightsOption();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder")
    Path modelDir;

    @Option(names = "--text", required = true, paramLabel = "FILE", description = "UTF-8 text file")
    Path textFile;

    @Option(names = "--ctx", paramLabel = "N",
            description = "context length (window size) in tokens (default: min(2048, the model's max positions))")
    Integer ctx;

    @Option(names = "--json", description = "print one JSON object: ppl, tokens, tokens_per_s, ...")
    boolean json;

    // KL divergence to an uncompressed reference (ALGORITHMS.md section 9)
    @Option(names = "--reference", paramLabel = "DIR",
            description = "also report the mean KL(p_reference || p_model) of the next-token distributions over the scored positions")
    Path referenceDir;

    @Override
    public Integer call() throws Exception {
        if (ctx != null && ctx < 2) throw new BadInputException("--ctx must be at least 2, got " + ctx);
        if (!Files.isRegularFile(textFile)) throw new BadInputException("--text " + textFile + ": no such file");
        String text = readUtf8(textFile);
        ModelFolder folder = weights.open(modelDir);
        int maxPos = folder.config().text().maxPositions();
        int window = ctx != null ? ctx : Math.min(2048, maxPos);
        if (window > maxPos)
            throw new BadInputException("--ctx " + window + " exceeds the model's max_position_embeddings " + maxPos);
        Tokenizer tokenizer = Tokenizer.load(folder.dir());
        int[] tokens = tokenizer.encode(text, true);
        if (tokens.length < window)
            throw new BadInputException("--text " + textFile + " has " + tokens.length + " tokens, fewer than one window of --ctx "
                    + window);
        LlamaModel model = LlamaModel.load(folder);
        int windows = tokens.length / window;
        Perplexity.Result r;
        KlDivergence.Result kl = null;
        LlamaModel reference = referenceDir == null ? null : LlamaModel.load(weights.open(referenceDir));
        try (Progress p = new Progress("ppl", (long) windows * window, "tok")) {
            if (reference != null) {
                kl = KlDivergence.evaluate(model, reference, tokens, window, (done, total) -> p.set((long) done * window));
                r = kl.perplexity();
            } else {
                r = Perplexity.evaluate(model, tokens, window, (done, total) -> p.set((long) done * window));
            }
        }
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("ppl", r.ppl());
            o.put("tokens", r.tokensScored());
            o.put("tokens_per_s", r.tokensPerSecond());
            o.put("ctx", window);
            o.put("windows", r.windows());
            o.put("tokens_in_text", tokens.length);
            o.put("mean_nll", r.meanNll());
            o.put("seconds", r.seconds());
            o.put("model", modelDir.toString());
            o.put("text", textFile.toString());
            if (kl != null) {
                o.put("kl", kl.meanKl());
                o.put("kl_max", kl.maxKl());
                o.put("reference", referenceDir.toString());
            }
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.printf(Locale.ROOT, "ppl %.4f  (ctx %d, %d windows, %d tokens scored of %d in the text; %.0f tok/s)%n",
                    r.ppl(), window, r.windows(), r.tokensScored(), tokens.length, r.tokensPerSecond());
            if (kl != null)
                System.out.printf(Locale.ROOT, "KL to %s: mean %.6g nats per position (max %.4g)%n", referenceDir, kl.meanKl(), kl.maxKl());
        }
        return 0;
    }

    static String readUtf8(Path file) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new BadInputException("--text " + file + ": not valid UTF-8");
        } catch (IOException e) {
            throw new BadInputException("--text " + file + ": cannot read: " + e.getMessage());
        }
    }
}
