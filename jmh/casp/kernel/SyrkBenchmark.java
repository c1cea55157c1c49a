package casp.kernel;

import java.util.SplittableRandom;
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

/** Hessian accumulation H += X^T X (float32 X, float64 H) and the float32 lower SYRK. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class SyrkBenchmark {
    @Param({"8192"})
    int tokens;

    @Param({"1024"})
    int dim;

    float[] x, c;
    double[] h;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(0);
        x = new float[tokens * dim];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        h = new double[dim * dim];
        c = new float[dim * dim];
    }

    @Benchmark
    public double[] accumulate() {
        Syrk.accumulate(x, 0, dim, tokens, dim, h, 0, dim);
        return h;
    }

    @Benchmark
    public float[] ssyrkLower() {
        Syrk.ssyrkLower(tokens, dim, 1f, x, 0, dim, 0f, c, 0, dim);
        return c;
    }
}
