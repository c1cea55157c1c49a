package casp.kernel;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The machine-speed probe of the regression gate (`casp bench regress`): a STREAM triad
 * a = b + s c over 3 x 32 MiB (memory bandwidth of one core) and a scalar FMA loop (four
 * dependent chains of 2^22 fused multiply-adds: core clock). The gate divides every benchmark's
 * time by how much slower these two ran than in the baseline's run, so a busier or slower-clocked
 * machine does not read as a regression. Both are written here, not in casp.kernel's main code, on
 * purpose: a probe must not change when the kernels under test change.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class MachineProbeBenchmark {
    static final int TRIAD_LENGTH = 8 << 20;
    static final int FMA_STEPS = 1 << 22;

    float[] a, b, c;
    double seed = 1.0000001;

    @Setup
    public void setup() {
        a = new float[TRIAD_LENGTH];
        b = new float[TRIAD_LENGTH];
        c = new float[TRIAD_LENGTH];
        for (int i = 0; i < TRIAD_LENGTH; i++) {
            b[i] = i & 1023;
            c[i] = (i * 7) & 511;
        }
    }

    @Benchmark
    public float[] streamTriad() {
        float s = 3f;
        float[] a = this.a, b = this.b, c = this.c;
        for (int i = 0; i < a.length; i++) a[i] = b[i] + s * c[i];
        return a;
    }

    @Benchmark
    public double scalarFma() {
        double x0 = seed, x1 = seed + 1e-3, x2 = seed + 2e-3, x3 = seed + 3e-3;
        double m = 0.9999999, k = 1e-7;
        for (int i = 0; i < FMA_STEPS; i++) {
            x0 = Math.fma(x0, m, k);
            x1 = Math.fma(x1, m, k);
            x2 = Math.fma(x2, m, k);
            x3 = Math.fma(x3, m, k);
        }
        return x0 + x1 + x2 + x3;
    }
}
