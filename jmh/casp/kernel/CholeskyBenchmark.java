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

/** Float64 Cholesky and the GPTQ inverse factor on an SPD matrix (each call copies the input first). */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class CholeskyBenchmark {
    @Param({"1024"})
    int n;

    double[] h, work, u;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(0);
        float[] x = new float[2 * n * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        h = new double[n * n];
        Syrk.accumulate(x, 0, n, 2 * n, n, h, 0, n);
        for (int i = 0; i < n; i++) h[i * n + i] += n;
        work = new double[n * n];
        u = new double[n * n];
    }

    @Benchmark
    public int factorLower() {
        System.arraycopy(h, 0, work, 0, h.length);
        return Cholesky.factorLower(work, 0, n, n);
    }

    @Benchmark
    public int choleskyInverseUpper() {
        return Cholesky.choleskyInverseUpper(h, 0, n, n, u, 0, n);
    }
}
