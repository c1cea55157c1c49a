package casp.compress;

import casp.kernel.RandomizedSvd;
import casp.kernel.HessianAccumulator;
import casp.quant.aqlm.QuantizerBenchmark;
import casp.quant.lowrank.LowRankQK;
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
 * The algebra of calibration around the quantizers: Hessian accumulation of one batch of 2048
 * tokens into a [size, size] float64 H ({@link HessianAccumulator}), and CASP's low-rank step for
 * one q/k projection: whitening by the calibration Gram matrix G (Cholesky) and the randomized SVD
 * of W L (rank size / 4), {@link LowRankQK#decompose} with the whitening computed once, as q and k
 * share it.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
public class CalibrationBenchmark {
    static final int TOKENS = 2048;

    @Param({"1024", "4096"})
    int size;

    float[] tokens, w;
    HessianAccumulator accumulator;
    LowRankQK.Whitening whitening;

    @Setup
    public void setup() {
        tokens = RandomizedSvd.gaussianMatrix(TOKENS, size, 1);
        accumulator = new HessianAccumulator(size);
        w = RandomizedSvd.gaussianMatrix(size, size, 2);
        whitening = LowRankQK.Whitening.of(QuantizerBenchmark.hessian(size, 2 * size, 3), size);
    }

    @Benchmark
    public HessianAccumulator hessianAccumulate() {
        accumulator.add(tokens, 0, TOKENS);
        return accumulator;
    }

    @Benchmark
    public LowRankQK.Decomposition whitenedQkRsvd() {
        return LowRankQK.decompose(w, size, size, whitening, size / 4, LowRankQK.Options.defaults());
    }
}
