package casp.quant.gptq;

import casp.quant.Layers;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The Cholesky-failure path: a singular or indefinite H gets more damping and a valid result, never NaN. */
class GptqDampingTest {

    private static void assertValid(QuantizedWeight q, float[] w, int rows, int cols, double[] h) {
        int maxq = (1 << q.bits) - 1;
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) assertTrue(q.code(r, c) <= maxq);
        for (float s : q.scales) assertTrue(Float.isFinite(s) && s > 0);
        float[] d = q.dequantize();
        for (float v : d) assertTrue(Float.isFinite(v));
        // the damping retry only changes how errors are spread, so the result is no worse than
        // a plain rounding by much: check it is a sane approximation of W
        double num = 0, den = 0;
        for (int i = 0; i < w.length; i++) {
            num += (d[i] - w[i]) * (d[i] - w[i]);
            den += w[i] * w[i];
        }
        assertTrue(num / den < 1, "relative weight error " + num / den);
    }

    /**
     * True when H + damp * mean(|diag H|) I has a Cholesky factorization (checked independently).
     * (Gptq damps relative to mean |diag|, which is mean(diag) for any real Hessian.)
     */
    private static boolean positiveDefiniteWith(double[] h, int n, double damp) {
        double mean = 0;
        for (int i = 0; i < n; i++) mean += Math.abs(h[i * n + i]);
        mean /= n;
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) a[i][j] = h[i * n + j] + (i == j ? damp * mean : 0);
        try {
            GptqReference.cholesky(a);
            return true;
        } catch (ArithmeticException e) {
            return false;
        }
    }

    @Test
    void singularHessianWithoutDampingIsRetried() {
        int rows = 12, cols = 64, tokens = 20; // rank 20 < 64: singular
        float[] w = Layers.weights(rows, cols, 1);
        double[] h = Layers.hessian(cols, tokens, 2);
        Gptq.Options o = Gptq.Options.defaults(2).withGroupSize(16).withPercDamp(0);
        assertFalse(positiveDefiniteWith(h, cols, 0), "the test needs a singular H");
        QuantizedWeight q = new Gptq(o).quantize(w, rows, cols, h);
        double used = q.stats().get("percdamp").doubleValue();
        assertTrue(q.stats().get("damp_attempts").intValue() > 1);
        assertTrue(used > 0, "damping used " + used);
        assertTrue(positiveDefiniteWith(h, cols, used));
        assertValid(q, w, rows, cols, h);
        // the reported damping, given up front, reproduces the result in one attempt
        QuantizedWeight again = new Gptq(o.withPercDamp(used)).quantize(w, rows, cols, h);
        assertEquals(1, again.stats().get("damp_attempts").intValue());
        assertArrayEquals(q.codes, again.codes);
        // and it matches the float64 reference run with that damping
        GptqReference ref = new GptqReference();
        ref.check(w, rows, cols, h, o.withPercDamp(used), q);
        assertEquals(0, ref.mismatches + ref.paramMismatches, ref.log.toString());
    }

    @Test
    void indefiniteHessianGetsEnoughDamping() {
        int rows = 10, cols = 48;
        float[] w = Layers.weights(rows, cols, 3);
        double[] h = Layers.hessian(cols, 200, 4);
        // subtract a multiple of a random rank-one matrix: a clearly negative eigenvalue
        Random rnd = new Random(5);
        double[] v = new double[cols];
        for (int i = 0; i < cols; i++) v[i] = rnd.nextGaussian();
        double mean = 0;
        for (int i = 0; i < cols; i++) mean += h[i * cols + i];
        mean /= cols;
        for (int i = 0; i < cols; i++) for (int j = 0; j < cols; j++) h[i * cols + j] -= 0.5 * mean * v[i] * v[j];
        assertFalse(positiveDefiniteWith(h, cols, 0.01), "the test needs an H that 1% damping does not fix");
        QuantizedWeight q = new Gptq(Gptq.Options.defaults(3).withGroupSize(16)).quantize(w, rows, cols, h);
        double used = q.stats().get("percdamp").doubleValue();
        assertTrue(used > 0.01, "damping used " + used);
        assertTrue(q.stats().get("damp_attempts").intValue() > 1);
        assertTrue(positiveDefiniteWith(h, cols, used));
        assertValid(q, w, rows, cols, h);
    }

    @Test
    void allDeadInputsGiveZeroWeight() {
        int rows = 6, cols = 20;
        float[] w = Layers.weights(rows, cols, 7);
        QuantizedWeight q = new Gptq(Gptq.Options.defaults(4).withGroupSize(8)).quantize(w, rows, cols, new double[cols * cols]);
        assertEquals(cols, q.stats().get("dead_inputs").intValue());
        for (float v : q.dequantize()) assertEquals(0f, v);
    }

    @Test
    void zeroDampingOnAWellConditionedHessianIsKept() {
        int rows = 9, cols = 30;
        float[] w = Layers.weights(rows, cols, 9);
        double[] h = Layers.hessian(cols, 300, 10);
        QuantizedWeight q = new Gptq(Gptq.Options.defaults(4).withPercDamp(0)).quantize(w, rows, cols, h);
        assertEquals(1, q.stats().get("damp_attempts").intValue());
        assertEquals(0.0, q.stats().get("percdamp").doubleValue());
    }
}
