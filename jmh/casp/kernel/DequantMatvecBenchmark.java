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
 * Dequantizing products with a random [rows, cols] quantized matrix (groups of 128): the mat-vec
 * (GB/s of packed codes = packedBytes / time) and the mat-mat Y = X W^T for a few tokens. Warm-up
 * is long because until C2 compiles the kernels the Vector API runs boxed (seconds per call).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 6, time = 2)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx8g"})
public class DequantMatvecBenchmark {
    @Param({"2", "3", "4", "8"})
    int bits;

    @Param({"4096", "16384"})
    int size;

    @Param({"32"})
    int tokens;

    QuantizedMatrix w;
    float[] x, y, xs, ys;

    @Setup
    public void setup() {
        w = QuantizedMatrix.random(size, size, bits, 128, 1);
        x = RandomizedSvd.gaussianMatrix(1, size, 2);
        y = new float[size];
        xs = RandomizedSvd.gaussianMatrix(tokens, size, 3);
        ys = new float[tokens * size];
    }

    @Benchmark
    public float[] matvec() {
        w.matvec(x, 0, y, 0);
        return y;
    }

    @Benchmark
    public float[] matmul() {
        w.matmul(xs, 0, tokens, ys, 0);
        return ys;
    }
}
