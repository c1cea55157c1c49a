package casp.quant.gptq;

import casp.kernel.GptqPacking;
import casp.kernel.QuantizedMatrix;
import casp.quant.Layers;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class QuantizedWeightTest {

    @Test
    void effectiveBitsCountScalesAndZeros() {
        QuantizedWeight g128 = new Rtn(2, 128, false, false).quantize(new float[4 * 256], 4, 256, null);
        assertEquals(2 + 18.0 / 128, g128.effectiveBits(), 1e-12); // 2.140625
        QuantizedWeight ch = new Rtn(4, -1, true, false).quantize(new float[3 * 100], 3, 100, null);
        assertEquals(4 + 20.0 / 100, ch.effectiveBits(), 1e-12);
        QuantizedWeight ragged = new Rtn(3, 32, false, false).quantize(new float[2 * 33], 2, 33, null);
        assertEquals(2, ragged.groups());
        assertEquals(3 + 2 * 19.0 / 33, ragged.effectiveBits(), 1e-12);
    }

    @Test
    void dequantizeFollowsTheGptqFormula() {
        int rows = 3, cols = 5;
        byte[] codes = new byte[rows * cols];
        for (int i = 0; i < codes.length; i++) codes[i] = (byte) (i * 37 % 256); // includes codes > 127
        float[] scales = {0.5f, 0.25f, 2f, 1f, 0.125f, 4f};  // 2 groups x 3 rows
        int[] zeros = {128, 3, 200, 1, 255, 0};
        int[] gIdx = {1, 0, 1, 0, 0};                          // not monotone (act-order)
        QuantizedWeight q = new QuantizedWeight("test", rows, cols, 8, 3, false, codes, scales, zeros, gIdx, Map.of());
        float[] w = q.dequantize();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int g = gIdx[c];
                assertEquals(scales[g * rows + r] * ((codes[r * cols + c] & 0xff) - zeros[g * rows + r]), w[r * cols + c]);
            }
        }
    }

    @Test
    void gptqTensorsRoundTripThroughTheKernelsQuantizedMatrix() {
        int rows = 24, cols = 96;
        float[] w = Layers.weights(rows, cols, 12);
        double[] h = Layers.hessian(cols, 300, 13, 5);
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (boolean stat : new boolean[] {false, true}) {
                for (boolean sym : new boolean[] {false, true}) {
                    for (int gs : new int[] {32, -1}) {
                        Gptq.Options o = Gptq.Options.defaults(bits).withGroupSize(gs).withStaticGroups(stat).withSymmetric(sym);
                        QuantizedWeight q = new Gptq(o).quantize(w, rows, cols, h);
                        GptqPacking.Tensors t = q.toGptq();
                        assertEquals(q.groups(), t.groups());
                        QuantizedMatrix m = QuantizedMatrix.fromGptq(t.qweight, t.qzeros, t.scales, t.gIdx, cols, rows, bits, gs);
                        assertArrayEquals(q.dequantize(), m.dequantize(), o.toString());
                    }
                }
            }
        }
    }

    @Test
    void inconsistentArraysAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new QuantizedWeight("x", 2, 4, 4, 2, false,
                new byte[8], new float[3], new int[3], new int[4], Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new QuantizedWeight("x", 2, 4, 4, 2, false,
                new byte[8], new float[4], new int[4], new int[3], Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new QuantizedWeight("x", 2, 4, 4, 2, false,
                new byte[8], new float[4], new int[4], new int[] {0, 0, 1, 2}, Map.of()));
    }

    @Test
    void rtnMatchesDirectRounding() {
        int rows = 13, cols = 45, gs = 16;
        float[] w = Layers.weights(rows, cols, 4);
        QuantizedWeight q = new Rtn(3, gs, false, false).quantize(w, rows, cols, null);
        QuantGrid grid = new QuantGrid(3, false, false);
        float[] d = q.dequantize();
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int g = c / gs;
                assertEquals(g, q.gIdx[c]);
                float s = q.scales[g * rows + r], z = q.zeros[g * rows + r];
                assertEquals(grid.quantize(w[r * cols + c], s, z), d[r * cols + c]);
            }
        }
        // and its parameters are the grid's for each group
        for (int g = 0; g * gs < cols; g++) {
            int cn = Math.min(gs, cols - g * gs);
            float[] x = new float[cn * rows];
            for (int c = 0; c < cn; c++) for (int r = 0; r < rows; r++) x[c * rows + r] = w[r * cols + g * gs + c];
            float[] s = new float[rows], z = new float[rows];
            grid.findParams(x, 0, rows, rows, cn, s, z, 0);
            for (int r = 0; r < rows; r++) {
                assertEquals(s[r], q.scales[g * rows + r]);
                assertEquals((int) z[r], q.zeros[g * rows + r]);
            }
        }
    }
}
