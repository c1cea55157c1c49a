package casp.cli;

import casp.io.BadInputException;
import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.kernel.Parallel;
import casp.kernel.VectorOps;
import casp.model.KvCache;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
import casp.quant.gptq.QuantizedLinear;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * `casp bench decode`: prefill and decode tokens/s of the float32 runtime, on a model folder
 * and/or a generated Llama-shaped model with random weights (hidden 1024, 8 layers by default).
 */
@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Prefill and decode tokens/s of a model folder (--model) and/or a random Llama-shaped model (--synthetic).")
public final class BenchDecodeCommand implements Callable<Integer> {
    @Mixin
    WeightsOption weights = new WeightsOption();

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model folder (repeatable)")
    List<Path> models = new ArrayList<>();

    @Option(names = "--synthetic", description = "also bench a random Llama-shaped model (see --hidden, --layers)")
    boolean synthetic;

    @Option(names = "--hidden", defaultValue = "1024", description = "synthetic: hidden size (default ${DEFAULT-VALUE}; "
            + "intermediate = 2.75x, head_dim 64, vocab 32000)")
    int hidden;

    @Option(names = "--synthetic-bits", paramLabel = "B", defaultValue = "0",
            description = "synthetic: 2, 3, 4 or 8 for decoder linears of random B-bit codes with a scale and zero point per "
                    + "128 inputs (the compressed runtime; implies --synthetic), 0 for float32 weights (default ${DEFAULT-VALUE})")
    int syntheticBits;

    @Option(names = "--layers", defaultValue = "8", description = "synthetic: decoder layers (default ${DEFAULT-VALUE})")
    int layers;

    @Option(names = "--prompt-tokens", defaultValue = "128", description = "prefill length (default ${DEFAULT-VALUE})")
    int promptTokens;

    @Option(names = "--decode-tokens", defaultValue = "128", description = "decoding steps (default ${DEFAULT-VALUE})")
    int decodeTokens;

    @Option(names = "--runs", defaultValue = "3", description = "timed runs; the median is reported (default ${DEFAULT-VALUE})")
    int repeat;

    @Option(names = "--warmup", defaultValue = "1",
            description = "untimed warm-up runs, repeated until at least --warmup-seconds have passed (default ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--warmup-seconds", defaultValue = "3",
            description = "minimum warm-up time, so the JIT has compiled the decode path (default ${DEFAULT-VALUE})")
    double warmupSeconds;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    /**
     * One model's median timings; weights says where a model folder's 16-bit tensors were kept
     * ("map", "heap", or "none" when it has none), null for a synthetic model.
     */
    record Result(String name, int prompt, int decode, double prefillSeconds, double decodeSeconds, String weights) {
        Result withWeights(String w) { return new Result(name, prompt, decode, prefillSeconds, decodeSeconds, w); }

        double prefillTps() { return prompt / prefillSeconds; }

        double decodeTps() { return decode / decodeSeconds; }
    }

    @Override
    public Integer call() throws Exception {
        if (syntheticBits != 0 && syntheticBits != 2 && syntheticBits != 3 && syntheticBits != 4 && syntheticBits != 8)
            throw new BadInputException("--synthetic-bits must be 0, 2, 3, 4 or 8, got " + syntheticBits);
        synthetic |= syntheticBits != 0;
        if (models.isEmpty() && !synthetic) throw new BadInputException("give --model DIR and/or --synthetic");
        if (promptTokens < 1) throw new BadInputException("--prompt-tokens must be >= 1, got " + promptTokens);
        if (decodeTokens < 1) throw new BadInputException("--decode-tokens must be >= 1, got " + decodeTokens);
        if (repeat < 1) throw new BadInputException("--runs must be >= 1, got " + repeat);
        if (warmup < 0) throw new BadInputException("--warmup must be 0 or more, got " + warmup);
        if (!(warmupSeconds >= 0)) throw new BadInputException("--warmup-seconds must be 0 or more, got " + warmupSeconds);
        if (synthetic && (hidden < 64 || hidden % 64 != 0 || layers < 1))
            throw new BadInputException("--hidden must be a positive multiple of 64 and --layers positive");
        List<Result> results = new ArrayList<>();
        for (Path dir : models) {
            ModelFolder folder = weights.open(dir);
            results.add(bench(dir.toString(), LlamaModel.load(folder)).withWeights(WeightsOption.describe(folder)));
        }
        if (synthetic) {
            ModelConfig.TextConfig c = SyntheticModel.config("llama", hidden, hidden * 11 / 4, layers, hidden / 64,
                    hidden / 64, 64, 32000, 4096, 10000.0, null, false);
            String name = "synthetic llama hidden " + hidden + ", " + layers + " layers, intermediate "
                    + c.intermediateSize() + ", vocab 32000";
            results.add(syntheticBits == 0 ? bench(name, SyntheticModel.create(c, 1))
                    : bench(name + ", " + syntheticBits + "-bit g128 linears", SyntheticModel.create(c, 1, QuantizedLinear.random(syntheticBits, 128, 1))));
        }
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode o = m.createObjectNode();
            o.put("threads", Parallel.threads());
            ArrayNode a = o.putArray("results");
            for (Result r : results) {
                ObjectNode n = a.addObject();
                n.put("model", r.name());
                if (r.weights() != null) n.put("weights", r.weights());
                n.put("prompt_tokens", r.prompt());
                n.put("decode_tokens", r.decode());
                n.put("prefill_tokens_per_s", r.prefillTps());
                n.put("decode_tokens_per_s", r.decodeTps());
            }
            System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(o));
        } else {
            System.out.printf(Locale.ROOT, "threads: %d (median of %d runs after %d warm-up)%n", Parallel.threads(), repeat, warmup);
            for (Result r : results)
                System.out.printf(Locale.ROOT, "%s%n  prefill %d tokens: %.1f tok/s (%.2f ms)   decode %d tokens: %.1f tok/s (%.3f ms/token)%n",
                        r.name() + (r.weights() != null ? " (16-bit weights: " + r.weights() + ")" : ""), r.prompt(), r.prefillTps(), r.prefillSeconds() * 1e3, r.decode(), r.decodeTps(),
                        r.decodeSeconds() * 1e3 / r.decode());
        }
        return 0;
    }

    private Result bench(String name, LlamaModel model) {
        int maxPos = model.config().maxPositions();
        int p = Math.min(promptTokens, maxPos - 1);
        int d = Math.min(decodeTokens, maxPos - p);
        SplittableRandom rnd = new SplittableRandom(7);
        int[] ids = new int[p];
        for (int i = 0; i < p; i++) ids[i] = rnd.nextInt(model.vocabSize());
        KvCache cache = model.newCache(p + d);
        float[] logits = new float[model.vocabSize()];
        double[] prefill = new double[repeat], decode = new double[repeat];
        long warmStart = System.nanoTime();
        int warmRuns = 0;
        while (warmRuns < warmup || (warmup > 0 && warmRuns < 1000 && (System.nanoTime() - warmStart) / 1e9 < warmupSeconds)) {
            runOnce(model, ids, p, d, cache, logits, null, null, 0);
            warmRuns++;
        }
        for (int run = 0; run < repeat; run++) runOnce(model, ids, p, d, cache, logits, prefill, decode, run);
        return new Result(name, p, d, BenchTiming.median(prefill), BenchTiming.median(decode), null);
    }

    /** One prefill of ids and d decoding steps; times go to prefill[run] and decode[run] when given. */
    private static void runOnce(LlamaModel model, int[] ids, int p, int d, KvCache cache, float[] logits,
                                double[] prefill, double[] decode, int run) {
        cache.reset();
        float[] x = model.embed(ids);
        long t0 = System.nanoTime();
        float[] last = model.forwardEmbeddings(x, p, cache, false);
        long t1 = System.nanoTime();
        int next = VectorOps.argmax(last, 0, last.length);
        for (int s = 0; s < d; s++) {
            model.decode(next, cache, logits);
            next = VectorOps.argmax(logits, 0, logits.length);
        }
        long t2 = System.nanoTime();
        if (prefill != null) {
            prefill[run] = (t1 - t0) / 1e9;
            decode[run] = (t2 - t1) / 1e9;
        }
    }
}
