package casp.quant.lowrank;

import casp.io.ModelConfig;
import casp.kernel.QuantizedMatrix;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LowRankLinearTest {

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }

    /** y[t, i] = sum_p A[i, p] sum_j B[p, j] x[t, j], naive float64. */
    static double[] naive(float[] a, float[] b, int out, int rank, int in, float[] x, int rows) {
        double[] y = new double[rows * out];
        for (int t = 0; t < rows; t++) {
            double[] z = new double[rank];
            for (int p = 0; p < rank; p++) for (int j = 0; j < in; j++) z[p] += (double) b[p * in + j] * x[t * in + j];
            for (int i = 0; i < out; i++) for (int p = 0; p < rank; p++) y[t * out + i] += a[i * rank + p] * z[p];
        }
        return y;
    }

    static QuantizedMatrix quantized(int rows, int cols, int bits, long seed, float[] denseOut) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] codes = new int[rows * cols];
        float[] scales = new float[rows], zeros = new float[rows];
        for (int i = 0; i < codes.length; i++) codes[i] = r.nextInt(1 << bits);
        for (int i = 0; i < rows; i++) {
            scales[i] = (float) (0.05 + 0.1 * r.nextDouble());
            zeros[i] = 1 + r.nextInt((1 << bits) - 1);
        }
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) denseOut[i * cols + j] = scales[i] * (codes[i * cols + j] - zeros[i]);
        return QuantizedMatrix.fromCodes(rows, cols, bits, -1, codes, scales, zeros);
    }

    @Test
    void denseAndQuantizedFactorsMatchTheNaiveProduct() {
        int out = 37, rank = 7, in = 53;
        for (boolean quant : new boolean[]{false, true}) {
            float[] a = random(out * rank, 1), b = random(rank * in, 2);
            LowRankLinear l;
            if (quant) {
                QuantizedMatrix qa = quantized(out, rank, 3, 3, a), qb = quantized(rank, in, 2, 4, b);
                l = new LowRankLinear(LowRankLinear.quantized(qa), LowRankLinear.quantized(qb));
            } else {
                l = LowRankLinear.dense(out, rank, in, a, b);
            }
            assertEquals(in, l.in());
            assertEquals(out, l.out());
            assertEquals(rank, l.rank());
            for (int rows : new int[]{1, 5, 40, 1}) {
                float[] x = random(rows * in + 3, 10 + rows);
                float[] y = new float[rows * out + 2];
                l.forward(x, 3, y, 2, rows);
                double[] want = naive(a, b, out, rank, in, java.util.Arrays.copyOfRange(x, 3, x.length), rows);
                for (int i = 0; i < want.length; i++) assertEquals(want[i], y[2 + i], 1e-4 * (1 + Math.abs(want[i])), (quant ? "quantized " : "dense ") + rows + " rows, entry " + i);
            }
        }
    }

    @Test
    void factorsMustChain() {
        assertThrows(IllegalArgumentException.class, () -> new LowRankLinear(new DenseLinear(4, 6, new float[24], null), new DenseLinear(8, 5, new float[40], null)));
    }

    @Test
    void replacesQAndKInADecoderLayerWithTheSameOutputWhenExact() {
        // Full-rank factors A = W, B = I reproduce the dense layer: the model's logits must not change.
        ModelConfig.TextConfig c = SyntheticModel.config("llama", 32, 48, 2, 4, 2, 8, 50, 64, 10000, null, true);
        Map<String, float[]> t = SyntheticModel.tensors(c, 5);
        LlamaModel ref = LlamaModel.fromTensors(c, t);
        LlamaModel m = LlamaModel.fromTensors(c, t);
        int[] ids = {1, 7, 3, 9, 22, 4};
        float[] want = ref.forward(ids, null, true);
        for (DecoderLayer layer : m.layers()) {
            for (String name : new String[]{DecoderLayer.Q, DecoderLayer.K}) {
                DenseLinear d = (DenseLinear) layer.linear(name);
                float[] eye = new float[d.in() * d.in()];
                for (int i = 0; i < d.in(); i++) eye[i * d.in() + i] = 1;
                layer.setLinear(name, LowRankLinear.dense(d.out(), d.in(), d.in(), d.weight(), eye));
            }
        }
        float[] got = m.forward(ids, null, true);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-4 * (1 + Math.abs(want[i])));
    }
}
