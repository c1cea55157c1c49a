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

/**
 * The mat-vec of a 16-bit output head (HalfMatrix, fp16 or bf16) of 32000 x hidden, against the
 * float32 mat-vec of the same values (Gemm.matVec), as a decoder step runs them.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 2)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class HalfMatvecBenchmark {
    @Param({"fp16", "bf16", "float32"})
    String type;

    @Param({"4096"})
    int hidden;

    static final int VOCAB = 32000;
    HalfMatrix half;
    float[] dense, x, y;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(1);
        int n = VOCAB * hidden;
        short[] w = new short[n];
        dense = new float[n];
        for (int i = 0; i < n; i++) {
            float v = (float) r.nextGaussian() * 0.02f;
            w[i] = type.equals("bf16") ? (short) (Float.floatToRawIntBits(v) >>> 16) : Fp16.fromFloat(v);
            dense[i] = v;
        }
        half = type.equals("float32") ? null : HalfMatrix.of(VOCAB, hidden, w, type.equals("bf16"));
        x = RandomizedSvd.gaussianMatrix(1, hidden, 2);
        y = new float[VOCAB];
    }

    @Benchmark
    public float[] matvec() {
        if (half != null) half.matvec(x, 0, y, 0);
        else Gemm.matVec(VOCAB, hidden, dense, 0, hidden, x, 0, y, 0);
        return y;
    }
}
