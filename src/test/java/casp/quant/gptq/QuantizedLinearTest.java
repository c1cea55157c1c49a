package casp.quant.gptq;

import casp.kernel.GptqPacking;
import casp.quant.gptq.Gptq;
import casp.quant.gptq.GptqFormat;
import casp.quant.gptq.QuantizedWeight;
import casp.quant.gptq.Rtn;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** QuantizedLinear (GPTQ v1 tensors on the dequantizing kernels) against a naive dense product. */
class QuantizedLinearTest {

    private static float[] random(int n, long seed, double scale) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    /** A Hessian of random correlated inputs (full rank), so GPTQ's act-order permutes non-trivially. */
    private static double[] hessian(int cols, long seed) {
        Random r = new Random(seed);
        int tokens = 2 * cols + 3;
        double[] h = new double[cols * cols];
        double[] x = new double[cols];
        for (int t = 0; t < tokens; t++) {
            double common = r.nextGaussian();
            for (int c = 0; c < cols; c++) x[c] = (r.nextGaussian() + 0.5 * common) * (1 + (c * 7 % 5));
            for (int i = 0; i < cols; i++) for (int j = 0; j < cols; j++) h[i * cols + j] += 2.0 * x[i] * x[j] / tokens;
        }
        return h;
    }

    /** Y = X W^T + b in double. */
    private static float[] naive(float[] x, int rows, float[] w, int out, int in, float[] bias) {
        float[] y = new float[rows * out];
        for (int t = 0; t < rows; t++) {
            for (int o = 0; o < out; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int i = 0; i < in; i++) s += (double) x[t * in + i] * w[o * in + i];
                y[t * out + o] = (float) s;
            }
        }
        return y;
    }

    private static void check(QuantizedWeight q, float[] bias, String what) {
        GptqPacking.Tensors t = GptqFormat.pack(q);
        QuantizedLinear lin = QuantizedLinear.fromGptq(t, bias);
        assertEquals(q.cols, lin.in(), what);
        assertEquals(q.rows, lin.out(), what);
        float[] w = q.dequantize();
        assertArrayEquals(w, lin.dequantize(), what + ": dequantized weight");
        for (int rows : new int[]{1, 2, 7, 33}) {
            float[] x = random(rows * q.cols, rows * 31L + q.cols, 1.0);
            float[] y = new float[rows * q.rows + 3];
            lin.forward(x, 0, y, 3, rows);
            float[] ref = naive(x, rows, w, q.rows, q.cols, bias);
            for (int i = 0; i < ref.length; i++) {
                assertEquals(ref[i], y[3 + i], 1e-4 * (1 + Math.abs(ref[i])), what + " rows=" + rows + " at " + i);
            }
        }
    }

    @Test
    void regularGroupsEveryWidth() {
        for (int bits : new int[]{2, 3, 4, 8}) {
            float[] w = random(40 * 96, bits, 0.05);
            check(new Rtn(bits, 32, false, false).quantize(w, 40, 96, null), null, bits + "-bit g32");
            check(new Rtn(bits, -1, true, false).quantize(w, 40, 96, null), random(40, 5, 1), bits + "-bit per channel, bias");
        }
    }

    @Test
    void groupsNotAMultipleOf16ArePadded() {
        // stories260K's down_proj: in = 172, groups of 86 (the largest divisor of 172 below 128).
        float[] w = random(64 * 172, 11, 0.05);
        QuantizedWeight q = new Rtn(3, 86, false, false).quantize(w, 64, 172, null);
        check(q, null, "3-bit g86");
        QuantizedLinear lin = QuantizedLinear.fromGptq(GptqFormat.pack(q), null);
        assertTrue(lin.matrix().cols() > 172, "padded layout");
        // A ragged last group (172 = 5 * 30 + 22) and a group of 30.
        check(new Rtn(4, 30, false, false).quantize(w, 64, 172, null), random(64, 2, 1), "4-bit g30");
        check(new Gptq(Gptq.Options.defaults(2).withGroupSize(86)).quantize(w, 64, 172, hessian(172, 3)), null, "gptq 2-bit g86");
    }

    @Test
    void actOrderWithDynamicGroupsPermutesInputs() {
        int rows = 24, cols = 80;
        float[] w = random(rows * cols, 21, 0.05);
        double[] h = hessian(cols, 4);
        for (int g : new int[]{16, 20}) {
            QuantizedWeight q = new Gptq(Gptq.Options.defaults(4).withGroupSize(g).withActOrder(true).withStaticGroups(false))
                    .quantize(w, rows, cols, h);
            boolean monotone = true;
            for (int c = 1; c < cols; c++) monotone &= q.gIdx[c] >= q.gIdx[c - 1];
            assertTrue(!monotone, "act-order without static groups gives a permuted g_idx");
            check(q, random(rows, 9, 1), "act-order g" + g);
        }
    }
}
