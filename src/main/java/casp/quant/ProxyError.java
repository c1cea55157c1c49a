package casp.quant;

import casp.kernel.Blas1;
import casp.kernel.Gemm;
import casp.kernel.QuantOps;

/**
 * GPTQ's layer-wise proxy loss: how much a change dW of a linear layer's weight changes its outputs
 * on the calibration inputs, tr(dW H dW^T) = (2/N) sum over tokens |dW x|^2, relative to the same
 * quantity for W itself.
 */
public final class ProxyError {
    private ProxyError() {}

    /** Rows of dW per GEMM, bounding the scratch memory to this many rows of [rows, cols]. */
    private static final int CHUNK = 256;

    /** tr(dW H dW^T) / tr(W H W^T) with dW = wq - w; 0 when W H W^T is 0. */
    public static double relative(float[] w, float[] wq, int rows, int cols, double[] h) {
        if (wq.length != w.length) throw new IllegalArgumentException("W and its quantized form differ in size");
        float[] d = wq.clone();
        Blas1.axpy(d.length, -1f, w, 0, d, 0); // d = wq - w
        float[] hf = toFloat(h, cols, scaleOf(h));
        double den = quadratic(w, rows, cols, hf);
        return den == 0 ? 0 : quadratic(d, rows, cols, hf) / den;
    }

    /** tr(D H D^T) for D [rows, cols] row-major, H [cols, cols] row-major. */
    public static double trace(float[] dw, int rows, int cols, double[] h) {
        double scale = scaleOf(h);
        return quadratic(dw, rows, cols, toFloat(h, cols, scale)) / scale;
    }

    /** tr(D H D^T) for D [rows, cols] and a float H [cols, cols], both row-major. */
    public static double trace(float[] dw, int rows, int cols, float[] h) {
        if (h.length != (long) cols * cols) throw new IllegalArgumentException("H must be " + cols + " x " + cols);
        return quadratic(dw, rows, cols, h);
    }

    /** A power of two that brings H's largest entry to [1, 2) (exact; 1 for a zero or non-finite H). */
    private static double scaleOf(double[] h) {
        double max = 0;
        if (h != null) for (double v : h) max = Math.max(max, Math.abs(v));
        return max > 0 && Double.isFinite(max) ? Math.scalb(1.0, -Math.getExponent(max)) : 1.0;
    }

    /**
     * H times scale in float, with entries that would be subnormal floats set to 0: a GEMM over
     * subnormal operands runs about a hundred times slower on x86 (a Hessian of tiny activations
     * made this report cost minutes per linear), and with H scaled to about 1 they are below
     * 1e-38 of its largest entry.
     */
    private static float[] toFloat(double[] h, int cols, double scale) {
        if (h == null || h.length != (long) cols * cols) {
            throw new IllegalArgumentException("H must be " + cols + " x " + cols);
        }
        float[] f = new float[h.length];
        for (int i = 0; i < h.length; i++) {
            float v = (float) (h[i] * scale);
            f[i] = Math.abs(v) < Float.MIN_NORMAL ? 0f : v;
        }
        return f;
    }

    /**
     * sum_r d_r H d_r^T: a float GEMM D H chunk by chunk, each row's dot product with D summed in
     * double. The float GEMM limits the relative accuracy to about 1e-6 times
     * (|d| |H| |d|) / (d H d): ample for a report (the tests see 1e-5 or better), and twice as
     * fast as a float64 GEMM on the same [rows, cols] x [cols, cols] product.
     */
    private static double quadratic(float[] dw, int rows, int cols, float[] hf) {
        float[] t = new float[Math.min(CHUNK, rows) * cols];
        double total = 0;
        for (int r0 = 0; r0 < rows; r0 += CHUNK) {
            int n = Math.min(CHUNK, rows - r0);
            Gemm.sgemm(false, false, n, cols, cols, 1f, dw, r0 * cols, cols, hf, 0, cols, 0f, t, 0, cols);
            for (int r = 0; r < n; r++) total += QuantOps.dot(t, r * cols, dw, (r0 + r) * cols, cols);
        }
        return total;
    }
}
