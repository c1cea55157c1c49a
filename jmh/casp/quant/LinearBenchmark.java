package casp.quant;

import casp.kernel.E8pMatrix;
import casp.kernel.HalfMatrix;
import casp.kernel.QuantizedMatrix;
import casp.kernel.RandomizedSvd;
import casp.model.DenseLinear;
import casp.model.HalfLinear;
import casp.model.Linear;
import casp.quant.aqlm.AqlmLinear;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.gptq.QuantizedLinear;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.quip.QuipLinear;
import casp.tensor.DType;
import java.util.Arrays;
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
 * Every runtime {@link Linear} on a random [size, size] weight, forward of `rows` rows (1 = the
 * decode mat-vec, 32 = a prefill chunk): float32, fp16, GPTQ row lanes at 2/3/4/8 bits (groups of
 * 128), QuIP# E8P12 codes (2 bits), AQLM 2x8 through its lookup tables, and a low-rank pair of
 * rank size / 8 (dense factors). The weights are random codes, not a quantization of anything.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 4, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class LinearBenchmark {
    @Param({"float32", "fp16", "gptq2", "gptq3", "gptq4", "gptq8", "quip2", "aqlm2x8", "lowrank"})
    String kind;

    @Param({"4096"})
    int size;

    @Param({"1", "32"})
    int rows;

    Linear linear;
    float[] x, y;

    @Setup
    public void setup() {
        linear = create(kind, size, 11);
        x = RandomizedSvd.gaussianMatrix(rows, size, 2);
        y = new float[rows * size];
    }

    @Benchmark
    public float[] forward() {
        linear.forward(x, 0, y, 0, rows);
        return y;
    }

    static Linear create(String kind, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        return switch (kind) {
            case "float32" -> new DenseLinear(n, n, RandomizedSvd.gaussianMatrix(n, n, seed), null);
            case "fp16" -> {
                short[] h = new short[n * n];
                for (int i = 0; i < h.length; i++) h[i] = DType.floatToF16((float) (r.nextDouble() * 2 - 1));
                yield new HalfLinear(HalfMatrix.of(n, n, h, false), null);
            }
            case "gptq2", "gptq3", "gptq4", "gptq8" ->
                    QuantizedLinear.of(QuantizedMatrix.random(n, n, kind.charAt(4) - '0', 128, seed), null);
            case "quip2" -> {
                short[] codes = new short[n * (n / 8)];
                for (int i = 0; i < codes.length; i++) codes[i] = (short) r.nextInt(1 << 16);
                yield new QuipLinear(new E8pMatrix(n, n, n, n, codes, signs(r, n), signs(r, n), 0.01f), null);
            }
            case "aqlm2x8" -> {
                int groups = n / AqlmTensors.IN_GROUP, m = 2, bits = 8;
                int[] codes = new int[n * groups * m];
                for (int i = 0; i < codes.length; i++) codes[i] = r.nextInt(1 << bits);
                float[] codebooks = RandomizedSvd.gaussianMatrix(m << bits, AqlmTensors.IN_GROUP, seed);
                float[] scales = new float[n];
                Arrays.fill(scales, 0.01f);
                yield AqlmLinear.of(new AqlmTensors(n, groups, m, bits, codes, codebooks, scales), n, null);
            }
            case "lowrank" -> LowRankLinear.dense(n, n / 8, n,
                    RandomizedSvd.gaussianMatrix(n, n / 8, seed), RandomizedSvd.gaussianMatrix(n / 8, n, seed + 1));
            default -> throw new IllegalArgumentException("unknown linear kind " + kind);
        };
    }

    static byte[] signs(SplittableRandom r, int n) {
        byte[] s = new byte[n];
        for (int i = 0; i < n; i++) s[i] = (byte) (r.nextBoolean() ? 1 : -1);
        return s;
    }
}
