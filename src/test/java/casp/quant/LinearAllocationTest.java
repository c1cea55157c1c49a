package casp.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import casp.kernel.AllocationMeter;
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
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The mat-vec of every runtime Linear (the decode path's one-row forward) allocates nothing once
 * warmed up, on any thread it runs on (measured in a JVM of its own, see {@link AllocationMeter}).
 * 1024 x 1024: large enough that each splits over the threads.
 */
class LinearAllocationTest {
    private static final int N = 1024, CALLS = 20;

    private static final String[] KINDS = {"float32", "fp16", "gptq2", "gptq3", "gptq4", "gptq8", "gptq2-act-order", "quip2", "aqlm2x8", "lowrank"};

    @Test
    void everyRuntimeLinearMatvecAllocatesNothing() throws Exception {
        Map<String, Long> none = new LinkedHashMap<>();
        for (String kind : KINDS) none.put(kind, 0L);
        assertEquals(none, AllocationMeter.inFreshJvm(Probe.class), "bytes allocated by " + CALLS + " mat-vecs of each kind");
    }

    /** The measurement, run in its own JVM. */
    public static final class Probe {
        public static void main(String[] args) {
            AllocationMeter meter = new AllocationMeter();
            float[] x = RandomizedSvd.gaussianMatrix(1, N, 2), y = new float[N];
            for (String kind : KINDS) {
                Linear linear = create(kind, 11);
                AllocationMeter.report(kind, meter.settledBytes(() -> {
                    for (int i = 0; i < CALLS; i++) linear.forward(x, 0, y, 0, 1);
                }, 10_000));
            }
        }
    }

    private static Linear create(String kind, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        return switch (kind) {
            case "float32" -> new DenseLinear(N, N, RandomizedSvd.gaussianMatrix(N, N, seed), null);
            case "fp16" -> {
                short[] h = new short[N * N];
                for (int i = 0; i < h.length; i++) h[i] = DType.floatToF16((float) (r.nextDouble() * 2 - 1));
                yield new HalfLinear(HalfMatrix.of(N, N, h, false), null);
            }
            case "gptq2", "gptq3", "gptq4", "gptq8" -> QuantizedLinear.of(QuantizedMatrix.random(N, N, kind.charAt(4) - '0', 128, seed), null);
            case "gptq2-act-order" -> {
                int[] perm = new int[N];
                for (int i = 0; i < N; i++) perm[i] = (i * 389) % N; // 389 is prime to 1024: a permutation
                int[] codes = new int[N * N];
                for (int i = 0; i < codes.length; i++) codes[i] = r.nextInt(4);
                float[] scales = new float[N * (N / 128)], zeros = new float[scales.length];
                Arrays.fill(scales, 0.01f);
                Arrays.fill(zeros, 1.5f);
                yield QuantizedLinear.of(QuantizedMatrix.fromCodes(N, N, 2, 128, codes, scales, zeros, perm), null);
            }
            case "quip2" -> {
                short[] codes = new short[N * (N / 8)];
                for (int i = 0; i < codes.length; i++) codes[i] = (short) r.nextInt(1 << 16);
                yield new QuipLinear(new E8pMatrix(N, N, N, N, codes, signs(r), signs(r), 0.01f), null);
            }
            case "aqlm2x8" -> {
                int groups = N / AqlmTensors.IN_GROUP, m = 2, bits = 8;
                int[] codes = new int[N * groups * m];
                for (int i = 0; i < codes.length; i++) codes[i] = r.nextInt(1 << bits);
                float[] scales = new float[N];
                Arrays.fill(scales, 0.01f);
                yield AqlmLinear.of(new AqlmTensors(N, groups, m, bits, codes,
                        RandomizedSvd.gaussianMatrix(m << bits, AqlmTensors.IN_GROUP, seed), scales), N, null);
            }
            case "lowrank" -> LowRankLinear.dense(N, N / 8, N,
                    RandomizedSvd.gaussianMatrix(N, N / 8, seed), RandomizedSvd.gaussianMatrix(N / 8, N, seed + 1));
            default -> throw new IllegalArgumentException("unknown linear kind " + kind);
        };
    }

    private static byte[] signs(SplittableRandom r) {
        byte[] s = new byte[N];
        for (int i = 0; i < N; i++) s[i] = (byte) (r.nextBoolean() ? 1 : -1);
        return s;
    }
}
