package casp.model;

import casp.io.ModelConfig;
import casp.kernel.RandomizedSvd;
import casp.quant.gptq.QuantizedLinear;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One decoding step of the 2-bit runtime after `context` cached positions: a random Llama-shaped
 * model (hidden 1024, 8 layers, 16 heads, intermediate 2816, vocab 32000) whose decoder linears are
 * random 2-bit codes in groups of 128 (the row-lane mat-vec), float32 head. The cache is filled
 * with random keys and values instead of a prefill (attention cost does not depend on their
 * values), and rewound after each step. Run with -prof gc: gc.alloc.rate.norm is the allocation
 * per decoded token, 0 once the buffers have their size.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 4, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class DecodeContextBenchmark {
    @Param({"1024", "4096"})
    int context;

    LlamaModel model;
    KvCache cache;
    float[] logits;

    @Setup
    public void setup() {
        ModelConfig.TextConfig c = SyntheticModel.config("llama", 1024, 2816, 8, 16, 16, 64, 32000, context + 1, 10000.0, null, false);
        model = SyntheticModel.create(c, 1, QuantizedLinear.random(2, 128, 1));
        cache = model.newCache(context + 1);
        for (int l = 0; l < cache.numLayers(); l++) {
            KvCache.Layer layer = cache.layer(l);
            int n = layer.keys().length;
            System.arraycopy(RandomizedSvd.gaussianMatrix(1, n, 10 + l), 0, layer.keys(), 0, n);
            System.arraycopy(RandomizedSvd.gaussianMatrix(1, n, 100 + l), 0, layer.values(), 0, n);
        }
        cache.advance(context);
        logits = new float[model.vocabSize()];
    }

    @Benchmark
    public float[] decodeStep() {
        model.decode(7, cache, logits);
        cache.reset();
        cache.advance(context);
        return logits;
    }
}
