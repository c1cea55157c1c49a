package casp.quant;

import casp.quant.Layers;
import casp.quant.gptq.Rtn;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ProxyErrorTest {

    private static double naiveTrace(float[] d, int rows, int cols, double[] h) {
        double t = 0;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                for (int j = 0; j < cols; j++) t += (double) d[r * cols + i] * h[i * cols + j] * d[r * cols + j];
            }
        }
        return t;
    }

    @Test
    void matchesNaiveFloat64AtAwkwardSizes() {
        int[][] sizes = {{1, 1}, {7, 33}, {17, 129}, {300, 70}};
        for (int[] s : sizes) {
            int rows = s[0], cols = s[1];
            float[] w = Layers.weights(rows, cols, rows + cols);
            double[] h = Layers.hessian(cols, 3 * cols, rows);
            float[] wq = new Rtn(2, -1, false, false).quantize(w, rows, cols, null).dequantize();
            float[] d = new float[w.length];
            for (int i = 0; i < d.length; i++) d[i] = wq[i] - w[i];
            double expect = naiveTrace(d, rows, cols, h) / naiveTrace(w, rows, cols, h);
            assertEquals(expect, ProxyError.relative(w, wq, rows, cols, h), 1e-5 * expect, rows + "x" + cols);
            assertEquals(naiveTrace(d, rows, cols, h), ProxyError.trace(d, rows, cols, h), 1e-5 * naiveTrace(d, rows, cols, h));
        }
    }

    @Test
    void hessiansOfAnyMagnitudeGiveTheSameRatio() {
        // H scaled into the float subnormal range (and beyond float's range): the ratio is scale
        // free and the trace scales with H, as in float64.
        int rows = 17, cols = 33;
        float[] w = Layers.weights(rows, cols, 5);
        double[] h = Layers.hessian(cols, 3 * cols, 6);
        float[] wq = new Rtn(2, -1, false, false).quantize(w, rows, cols, null).dequantize();
        float[] d = new float[w.length];
        for (int i = 0; i < d.length; i++) d[i] = wq[i] - w[i];
        double ratio = ProxyError.relative(w, wq, rows, cols, h);
        for (double scale : new double[] {1e-41, 1e-60, 1e50}) {
            double[] hs = h.clone();
            for (int i = 0; i < hs.length; i++) hs[i] *= scale;
            assertEquals(ratio, ProxyError.relative(w, wq, rows, cols, hs), 1e-5 * ratio, "H x " + scale);
            double expect = naiveTrace(d, rows, cols, hs);
            assertEquals(expect, ProxyError.trace(d, rows, cols, hs), 1e-5 * expect, "trace, H x " + scale);
        }
    }

    @Test
    void zeroForAnExactCopy() {
        float[] w = Layers.weights(4, 9, 1);
        assertEquals(0.0, ProxyError.relative(w, w.clone(), 4, 9, Layers.hessian(9, 20, 2)));
    }
}
