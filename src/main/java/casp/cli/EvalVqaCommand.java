package casp.cli;

import casp.eval.KlDivergence;
import casp.eval.VqaEvaluator;
import casp.io.BadInputException;
import casp.io.LlavaDataset;
import casp.model.LlavaModel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * `casp eval vqa --model DIR --data FILE.json --images DIR`: greedy answers to LLaVA conversation
 * data, exact-match accuracy (lower-cased, punctuation stripped) and the teacher-forced
 * perplexity of the reference answers' tokens.
 */
@Command(name = "vqa", mixinStandardHelpOptions = true,
        description = "Visual question answering on LLaVA conversation data: greedy exact-match accuracy "
                + "(lower-cased, punctuation stripped) and the perplexity of the reference answer tokens (teacher-forced).")
public final class EvalVqaCommand implements Callable<Integer> {
    @Mixin
    WeightsOption weights = new WeightsOption();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "LLaVA model folder (Hugging Face llava-hf layout)")
    Path modelDir;

    @Option(names = "--data", required = true, paramLabel = "FILE",
            description = "LLaVA conversation JSON: [{id, image, conversations: [{from: human, value: \"<image>\\n...\"}, {from: gpt, value}]}]")
    Path dataFile;

    @Option(names = "--images", paramLabel = "DIR", description = "folder of the images (default: images/ beside the data file)")
    Path imagesDir;

    @Mixin
    VideoFramesOption frames;

    @Option(names = "--limit", paramLabel = "N", description = "evaluate only the first N samples")
    Integer limit;

    @Option(names = "--max-tokens", paramLabel = "N",
            description = "answer length limit in tokens (default: generation_config.json's max_new_tokens, else 64)")
    Integer maxTokens;

    @Option(names = "--stop", paramLabel = "TEXT",
            description = "also stop an answer once its text contains TEXT (repeatable; EOS always stops)")
    List<String> stop = new ArrayList<>();

    @Option(names = "--predictions", paramLabel = "FILE", description = "write every sample's answer and score to a JSON file")
    Path predictionsFile;

    @Option(names = "--json", description = "print one JSON object: accuracy, answer_ppl, n, ...")
    boolean json;

    // KL divergence to an uncompressed reference (ALGORITHMS.md section 9)
    @Option(names = "--reference", paramLabel = "DIR",
            description = "also report the mean KL(p_reference || p_model) over the answer tokens (teacher-forced)")
    Path referenceDir;

    @Override
    public Integer call() throws Exception {
        if (limit != null && limit < 1) throw new BadInputException("--limit must be >= 1, got " + limit);
        if (maxTokens != null && maxTokens < 1) throw new BadInputException("--max-tokens must be >= 1, got " + maxTokens);
        Path images = imagesDir != null ? imagesDir
                : (dataFile.toAbsolutePath().getParent() == null ? Path.of("images") : dataFile.toAbsolutePath().getParent().resolve("images"));
        List<LlavaDataset.Sample> data = LlavaDataset.load(dataFile, images);
        if (data.isEmpty()) throw new BadInputException("--data " + dataFile + ": no samples");
        LlavaModel model = LlavaModel.load(weights.open(modelDir));
        LlavaModel reference = referenceDir == null ? null : LlavaModel.load(weights.open(referenceDir));
        frames.applyTo(model, reference);
        int maxNew = maxTokens != null ? maxTokens : defaultMaxTokens(modelDir);
        // --reference: the reference model's answer distributions reach the KL through the answer-logits listener.
        KlDivergence.Mean kl = reference == null ? null : new KlDivergence.Mean();
        var opt = new VqaEvaluator.Options(limit == null ? 0 : limit, maxNew, stop,
                kl == null ? null : KlDivergence.againstReference(reference, kl));
        int n = limit == null ? data.size() : Math.min(limit, data.size());
        VqaEvaluator.Result r;
        try (Progress p = new Progress("vqa", n, "samples")) {
            r = VqaEvaluator.evaluate(model, data, opt, (done, total, s) -> p.set(done));
        }
        ObjectMapper m = new ObjectMapper();
        if (predictionsFile != null) writePredictions(m, r);
        if (json) {
            ObjectNode o = m.createObjectNode();
            o.put("accuracy", r.accuracy());
            o.put("answer_ppl", r.answerPpl());
            o.put("n", r.n());
            o.put("answer_tokens", r.answerTokens());
            o.put("answer_nll", r.meanAnswerNll());
            ObjectNode bt = o.putObject("by_type");
            for (Map.Entry<String, VqaEvaluator.TypeResult> e : r.byType().entrySet()) {
                ObjectNode t = bt.putObject(e.getKey());
                t.put("n", e.getValue().n());
                t.put("accuracy", e.getValue().accuracy());
                t.put("answer_ppl", e.getValue().answerPpl());
            }
            if (kl != null) {
                o.put("kl", kl.mean());
                o.put("kl_max", kl.max());
                o.put("reference", referenceDir.toString());
            }
            o.put("seconds", r.seconds());
            o.put("model", modelDir.toString());
            o.put("data", dataFile.toString());
            System.out.println(m.writeValueAsString(o));
        } else {
            System.out.printf(Locale.ROOT, "samples        %d%n", r.n());
            System.out.printf(Locale.ROOT, "exact match    %.4f  (%d of %d)%n", r.accuracy(),
                    Math.round(r.accuracy() * r.n()), r.n());
            System.out.printf(Locale.ROOT, "answer ppl     %.5f  (%d answer tokens, mean NLL %.5f)%n", r.answerPpl(),
                    r.answerTokens(), r.meanAnswerNll());
            for (Map.Entry<String, VqaEvaluator.TypeResult> e : r.byType().entrySet())
                System.out.printf(Locale.ROOT, "  %-12s n=%-4d exact match %.4f  answer ppl %.5f%n", e.getKey(),
                        e.getValue().n(), e.getValue().accuracy(), e.getValue().answerPpl());
            if (kl != null)
                System.out.printf(Locale.ROOT, "KL to ref.     %.6g nats per answer token (max %.4g; %s)%n", kl.mean(), kl.max(), referenceDir);
            System.out.printf(Locale.ROOT, "time           %.1f s (%.2f samples/s)%n", r.seconds(), r.n() / r.seconds());
        }
        return 0;
    }

    private static int defaultMaxTokens(Path dir) {
        Path g = dir.resolve("generation_config.json");
        if (Files.isRegularFile(g)) {
            try {
                var n = new ObjectMapper().readTree(g.toFile());
                if (n != null && n.path("max_new_tokens").canConvertToInt() && n.get("max_new_tokens").asInt() > 0)
                    return n.get("max_new_tokens").asInt();
            } catch (java.io.IOException e) {
                throw new BadInputException(g + ": not valid JSON: " + e.getMessage());
            }
        }
        return 64;
    }

    private void writePredictions(ObjectMapper m, VqaEvaluator.Result r) throws java.io.IOException {
        ArrayNode a = m.createArrayNode();
        for (VqaEvaluator.SampleResult s : r.samples()) {
            ObjectNode o = a.addObject();
            o.put("id", s.id());
            if (s.type() != null) o.put("type", s.type());
            o.put("question", s.question());
            o.put("gold", s.gold());
            o.put("pred", s.prediction());
            o.put("correct", s.correct());
            o.put("answer_nll", s.answerNll());
            o.put("answer_tokens", s.answerTokens());
        }
        Path target = predictionsFile.toAbsolutePath();
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try {
            m.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), a);
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (java.io.IOException e) {
            Files.deleteIfExists(tmp);
            throw new BadInputException("--predictions " + predictionsFile + ": cannot write: " + e.getMessage());
        }
    }
}
