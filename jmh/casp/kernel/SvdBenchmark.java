package casp.kernel;

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
 * Exact thin SVD of a Gaussian [n, n] matrix ({@link DenseSvd}) and its largest part, the
 * symmetric eigen-decomposition of the [n, n] Gram matrix ({@link SymmetricEigen}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 5)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
public class SvdBenchmark {
    @Param({"256", "1000"})
    int n;

    double[] a, gram;

    @Setup
    public void setup() {
        float[] g = RandomizedSvd.gaussianMatrix(n, n, 1);
        a = new double[n * n];
        for (int i = 0; i < a.length; i++) a[i] = g[i];
        gram = new double[n * n];
        Gemm.dgemm(true, false, n, n, n, 1, a, 0, n, a, 0, n, 0, gram, 0, n);
    }

    @Benchmark
    public DenseSvd.Result svd() {
        return DenseSvd.decompose(a, n, n);
    }

    @Benchmark
    public SymmetricEigen.Result eigenOfGram() {
        return SymmetricEigen.decompose(gram, n);
    }
}
