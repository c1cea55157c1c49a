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
    void zeroForAnExactCopy() {
        float[] w = Layers.weights(4, 9, 1);
        assertEquals(0.0, ProxyError.relative(w, w.clone(), 4, 9, Layers.hessian(9, 20, 2)));
    }
}
