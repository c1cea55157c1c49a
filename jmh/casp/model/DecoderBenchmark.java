package casp.model;

import casp.io.ModelConfig;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Prefill of 128 tokens, one decoding step at position 128, and one decoder layer on 128 rows,
 * on stories260K (found at ../shared/models/stories260K/model or -Dcasp.stories=DIR) and on a
 * random Llama-shaped model (hidden 1024, 8 layers, intermediate 2816, vocab 32000), with float32
 * decoder linears (synthetic1024) or random 2-bit codes in groups of 128 (synthetic1024q2: the
 * compressed runtime's dequantizing mat-vec and tile + GEMM paths).
 * Tokens/s: prefill = 128 / time; decode = 1 / time.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
public class DecoderBenchmark {
    static final int PROMPT = 128;

    @Param({"stories260K", "synthetic1024", "synthetic1024q2"})
    String model;

    LlamaModel m;
    int[] ids;
    KvCache cache;
    float[] x, logits, hidden;

    @Setup
    public void setup() {
        if (model.equals("stories260K")) {
            Path dir = Path.of(System.getProperty("casp.stories", "../shared/models/stories260K/model"));
            if (!Files.isDirectory(dir)) throw new IllegalStateException("stories260K not found at " + dir.toAbsolutePath());
            m = LlamaModel.load(dir);
        } else {
            ModelConfig.TextConfig c = SyntheticModel.config("llama", 1024, 2816, 8, 16, 16, 64, 32000, 2048, 10000.0, null, false);
            m = model.endsWith("q2") ? SyntheticModel.create(c, 1, casp.quant.gptq.QuantizedLinear.random(2, 128, 1)) : SyntheticModel.create(c, 1);
        }
        SplittableRandom r = new SplittableRandom(3);
        ids = new int[PROMPT];
        for (int i = 0; i < PROMPT; i++) ids[i] = r.nextInt(m.vocabSize());
        cache = m.newCache(PROMPT + 1);
        x = new float[PROMPT * m.hiddenSize()];
        hidden = new float[PROMPT * m.hiddenSize()];
        logits = new float[m.vocabSize()];
    }

    /** A cache holding the prompt, for the decode benchmark. */
    @Setup(Level.Iteration)
    public void fillCache() {
        cache.reset();
        m.embed(ids, 0, PROMPT, x, 0);
        m.forwardHidden(x, PROMPT, cache, ForwardHooks.NONE);
    }

    @Benchmark
    public float[] prefill128() {
        KvCache c = cache;
        c.reset();
        m.embed(ids, 0, PROMPT, x, 0);
        m.forwardHidden(x, PROMPT, c, ForwardHooks.NONE);
        m.logits(x, PROMPT - 1, 1, logits, 0);
        // leave the cache holding the prompt for decodeStep
        return logits;
    }

    @Benchmark
    public float[] decodeStep() {
        m.decode(ids[0], cache, logits);
        cache.reset();                       // rewind to 128 positions without recomputing them
        cache.advance(PROMPT);
        return logits;
    }

    @Benchmark
    public float[] oneLayer128Rows() {
        m.embed(ids, 0, PROMPT, hidden, 0);
        m.layer(0).forward(hidden, PROMPT, 0, null, ForwardHooks.NONE);
        return hidden;
    }
}
