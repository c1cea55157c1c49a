package casp.cli;

import casp.compress.CaspPlan;
import casp.compress.CompressedModelWriter;
import casp.compress.CompressionOptions;
import casp.compress.CompressionRun;
import casp.eval.KlDivergence;
import casp.eval.VqaEvaluator;
import casp.io.BadInputException;
import casp.io.LlavaDataset;
import casp.model.LlavaModel;
import casp.report.Charts;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp demo`: on the LLaVA model shipped in testdata/ (llava-stories: a real pretrained language
 * model, stories260K, that 2-bit quantization damages), compress with GPTQ, CASP-GPTQ, QuIP# and
 * CASP-QuIP# at the 2-bit target, evaluate the float32 model and each compressed one on the dev
 * questions, and print a side-by-side table: effective bits, accuracy, answer perplexity, KL to the
 * float32 model, size on disk, time. To stay short on two cores it uses few calibration samples and
 * the first --limit dev questions, and says so.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Compress the bundled LLaVA model with GPTQ, CASP-GPTQ, QuIP# and CASP-QuIP# at 2 bits, "
                + "evaluate each and print a side-by-side table.")
public final class DemoCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", defaultValue = "testdata/llava-stories/model",
            description = "LLaVA model folder (default: ${DEFAULT-VALUE})")
    Path model;

    @Option(names = "--data", paramLabel = "DIR", defaultValue = "testdata/llava-stories/data",
            description = "folder with calib/calib.json and dev/dev.json (+ images/) (default: ${DEFAULT-VALUE})")
    Path data;

    @Option(names = "--methods", paramLabel = "LIST", split = ",", defaultValue = "gptq,casp-gptq,quip,casp-quip",
            description = "compressions compared, any of gptq, casp-gptq, quip, casp-quip (default: ${DEFAULT-VALUE})")
    List<String> methods;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "100", description = "dev questions evaluated (default: ${DEFAULT-VALUE})")
    int limit;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "32", description = "calibration samples (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--bits", paramLabel = "B", defaultValue = "2", description = "target width, 2 or 3 (default: ${DEFAULT-VALUE})")
    int bits;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "calibration seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--keep", paramLabel = "DIR", description = "keep the compressed folders under DIR (default: a temporary folder, removed)")
    Path keep;

    @Option(names = "--json", description = "print the table as one JSON object")
    boolean json;

    /** One row of the table. */
    record Row(String name, double effectiveBits, double accuracy, double answerPpl, double kl, long bytes, double compressSeconds,
               double evalSeconds) {}

    @Override
    public Integer call() throws Exception {
        if (limit < 1) throw new BadInputException("--limit must be >= 1, got " + limit);
        if (samples < 1) throw new BadInputException("--samples must be >= 1, got " + samples);
        if (bits != 2 && bits != 3) throw new BadInputException("--bits must be 2 or 3, got " + bits);
        for (String m : methods)
            if (label(m) == null) throw new BadInputException("--methods: unknown method '" + m + "' (gptq, casp-gptq, quip, casp-quip)");
        Path calib = data.resolve("calib").resolve("calib.json"), dev = data.resolve("dev").resolve("dev.json");
        if (!Files.isRegularFile(model.resolve("config.json")))
            throw new BadInputException("--model " + model + ": no config.json (run from the repository root, or pass --model)");
        if (!Files.isRegularFile(calib) || !Files.isRegularFile(dev))
            throw new BadInputException("--data " + data + ": needs calib/calib.json and dev/dev.json (run from the repository root, or pass --data)");
        List<LlavaDataset.Sample> devSet = LlavaDataset.load(dev, dev.getParent().resolve("images"));
        int n = Math.min(limit, devSet.size());
        PrintStream err = System.err;
        err.printf(Locale.ROOT, "casp demo: %s; calibration %d samples of %s (seed %d); dev: the first %d of %d questions "
                + "(small settings so the demo takes a few minutes; see --samples, --limit)%n", model, samples, calib, seed, n, devSet.size());

        LlavaModel fp = LlavaModel.load(model);
        int maxNew = maxNewTokens(model);
        List<Row> rows = new ArrayList<>();
        long fpBytes = Files.size(model.resolve("model.safetensors"));
        Row fpRow = evaluate("float32", fp, null, devSet, n, maxNew, 32, fpBytes, 0);
        rows.add(fpRow);

        Path work = keep != null ? keep.toAbsolutePath() : Files.createTempDirectory("casp-demo");
        Files.createDirectories(work);
        try {
            for (int i = 0; i < methods.size(); i++) {
                String method = methods.get(i);
                String name = label(method) + " " + bits + "-bit";
                boolean casp = method.startsWith("casp-");
                String backend = casp ? method.substring("casp-".length()) : method;
                CompressionOptions opt = new CompressionOptions(backend, bits, CompressionOptions.AUTO_GROUP, false, false, true, samples, 256,
                        seed, 0.01);
                CaspPlan.Options d = CaspPlan.Options.defaults();
                CaspPlan.Options caspOpt = !casp ? null : new CaspPlan.Options(backend, bits, d.rankRule(), d.rankRatio(), d.rankThreshold(),
                        d.allocation(), d.perLinear(), d.factorBits(), d.aBits(), d.rotate(), d.refitA(), true);
                Path out = work.resolve(method + bits);
                if (Files.exists(out) && keep != null) CompressedModelWriter.checkTarget(out, false);
                err.println("casp demo: compressing with " + name + " ...");
                PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
                CompressionRun.Outcome o;
                try (Progress p = new Progress("compress", fp.language().numLayers(), "blocks")) {
                    o = CompressionRun.run(new CompressionRun.Request(model, calib, null, opt, out, false, false, false, caspOpt, false),
                            new casp.compress.SequentialCompressor.Listener() {
                                @Override public void blockDone(casp.compress.SequentialCompressor.BlockResult b, casp.compress.Calibration a) {
                                    p.advance(1);
                                }
                            }, quiet);
                }
                if (casp) Charts.bitAllocation(o.blocks(), model, out.resolve(Charts.BIT_ALLOCATION));
                rows.add(evaluate(name, LlavaModel.load(out), fp, devSet, n, maxNew, o.effectiveBits(),
                        Files.size(out.resolve("model.safetensors")), o.seconds()));
            }
        } finally {
            if (keep == null) deleteQuietly(work);
        }
        print(rows, n, devSet.size());
        return 0;
    }

    /** The table's name of a method, or null when the demo does not know it. */
    private static String label(String method) {
        return switch (method) {
            case "gptq" -> "GPTQ";
            case "casp-gptq" -> "CASP-GPTQ";
            case "quip" -> "QuIP#";
            case "casp-quip" -> "CASP-QuIP#";
            default -> null;
        };
    }

    private Row evaluate(String name, LlavaModel m, LlavaModel reference, List<LlavaDataset.Sample> dev, int n, int maxNew,
                         double effectiveBits, long bytes, double compressSeconds) {
        KlDivergence.Mean kl = reference == null ? null : new KlDivergence.Mean();
        VqaEvaluator.Options opt = new VqaEvaluator.Options(n, maxNew, List.of(),
                kl == null ? null : KlDivergence.againstReference(reference, kl));
        VqaEvaluator.Result r;
        System.err.println("casp demo: evaluating " + name + " ...");
        try (Progress p = new Progress("eval", n, "questions")) {
            r = VqaEvaluator.evaluate(m, dev, opt, (done, total, s) -> p.set(done));
        }
        return new Row(name, effectiveBits, r.accuracy(), r.answerPpl(), kl == null ? 0 : kl.mean(), bytes, compressSeconds, r.seconds());
    }

    private void print(List<Row> rows, int n, int total) throws Exception {
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("model", model.toString());
            o.put("dev_questions", n);
            o.put("dev_total", total);
            o.put("calibration_samples", samples);
            ArrayNode a = o.putArray("rows");
            for (Row r : rows) {
                a.addObject().put("name", r.name()).put("effective_bits", r.effectiveBits()).put("accuracy", r.accuracy())
                        .put("answer_ppl", r.answerPpl()).put("kl", r.kl()).put("model_bytes", r.bytes())
                        .put("compress_seconds", r.compressSeconds()).put("eval_seconds", r.evalSeconds());
            }
            System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
            return;
        }
        System.out.printf(Locale.ROOT, "%n%s, dev questions 1-%d of %d, calibration %d samples (seed %d)%n", model, n, total, samples, seed);
        System.out.printf(Locale.ROOT, "%-18s %10s %9s %11s %11s %11s %11s %9s%n", "model", "eff. bits", "accuracy", "answer ppl",
                "KL to fp32", "size (MiB)", "compress s", "eval s");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "%-18s %10.4f %9.4f %11.4f %11.5f %11.2f %11s %9.1f%n", r.name(), r.effectiveBits(), r.accuracy(),
                    r.answerPpl(), r.kl(), r.bytes() / 1048576.0, r.compressSeconds() > 0 ? String.format(Locale.ROOT, "%.1f", r.compressSeconds()) : "-",
                    r.evalSeconds());
        }
        System.out.println("Effective bits: stored bits per original decoder linear weight (codes, fp16 scales, zeros, low-rank factors).");
        System.out.println("Size: model.safetensors, which also holds the float32 vision tower, projector and embeddings.");
        if (keep != null) System.out.println("Compressed folders kept in " + keep);
    }

    private static int maxNewTokens(Path dir) {
        Path g = dir.resolve("generation_config.json");
        try {
            if (Files.isRegularFile(g)) {
                var node = new ObjectMapper().readTree(g.toFile());
                if (node != null && node.path("max_new_tokens").canConvertToInt() && node.get("max_new_tokens").asInt() > 0)
                    return node.get("max_new_tokens").asInt();
            }
        } catch (java.io.IOException e) {
            throw new BadInputException(g + ": not valid JSON: " + e.getMessage());
        }
        return 64;
    }

    private static void deleteQuietly(Path dir) {
        try (var s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(java.util.Comparator.reverseOrder())::iterator) Files.deleteIfExists(p);
        } catch (java.io.IOException | RuntimeException ignored) {
            // a temporary folder: best effort
        }
    }
}
