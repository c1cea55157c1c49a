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
 * Randomized SVD of a Gaussian [n, n] matrix (oversampling 16) and its small dense parts: the
 * symmetric eigen-decomposition of the [rank + 16]^2 Gram matrix and CholeskyQR2 of an
 * [n, rank + 16] panel.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
public class RsvdBenchmark {
    @Param({"1024", "4096"})
    int n;

    @Param({"128", "512"})
    int rank;

    @Param({"2"})
    int powerIters;

    float[] a, panel;
    double[] gram;
    int l;

    @Setup
    public void setup() {
        a = RandomizedSvd.gaussianMatrix(n, n, 1);
        l = rank + 16;
        panel = RandomizedSvd.gaussianMatrix(n, l, 2);
        float[] g = RandomizedSvd.gaussianMatrix(2 * l, l, 3);
        gram = new double[l * l];
        for (int i = 0; i < l; i++) {
            for (int j = 0; j < l; j++) {
                double s = 0;
                for (int k = 0; k < 2 * l; k++) s += (double) g[k * l + i] * g[k * l + j];
                gram[i * l + j] = s;
            }
        }
    }

    @Benchmark
    public RandomizedSvd.Result rsvd() {
        return RandomizedSvd.compute(a, n, n, rank, 16, powerIters, 7);
    }

    @Benchmark
    public SymmetricEigen.Result eigenOfGram() {
        return SymmetricEigen.decompose(gram, l);
    }

    @Benchmark
    public float[] choleskyQr2() {
        float[] y = panel.clone();
        Qr.orthonormalize(y, n, l);
        return y;
    }
}
