package casp.kernel;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * VectorOps, Activations and AttentionKernel against naive double-precision loops at awkward sizes
 * and offsets. Plain static methods so that {@link ModelKernelsTest} can run them at every vector width.
 */
public final class ModelKernelChecks {
    private ModelKernelChecks() {}

    /** The checks, by method name. */
    public static final String[] ALL = {"dotAxpyAddScaleMax", "rmsNormAndRope", "siluMulSoftmaxLogSumExp", "attendRowsMatchesNaive"};

    /** The effective vector width of the kernels this class is linked against. */
    public static int bits() {
        return VectorSupport.bits();
    }

    static final int[] SIZES = {1, 2, 7, 8, 15, 16, 17, 33, 64, 129, 300};

    static float[] rand(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) ((2 * r.nextDouble() - 1) * scale);
        return x;
    }

    static void close(double expected, double got, double tol, String what) {
        assertEquals(expected, got, tol * Math.max(1, Math.abs(expected)), what + " (vector bits " + VectorSupport.bits() + ")");
    }

    public static void dotAxpyAddScaleMax() {
        SplittableRandom r = new SplittableRandom(1);
        for (int n : SIZES) {
            float[] a = rand(r, n + 3, 1), b = rand(r, n + 5, 1);
            double dot = 0;
            for (int i = 0; i < n; i++) dot += (double) a[i + 3] * b[i + 5];
            close(dot, Blas1.dot(n, a, 3, b, 5), 1e-5, "dot n=" + n);

            float[] y = b.clone();
            Blas1.axpy(n, 0.75f, a, 3, y, 5);
            for (int i = 0; i < n + 5; i++) close(i < 5 ? b[i] : b[i] + 0.75 * a[i - 2], y[i], 1e-6, "axpy n=" + n);

            y = b.clone();
            VectorOps.add(a, 3, y, 5, n);
            for (int i = 5; i < n + 5; i++) close(b[i] + a[i - 2], y[i], 1e-6, "add n=" + n);

            y = b.clone();
            VectorOps.scale(y, 5, n, -2.5f);
            for (int i = 0; i < n + 5; i++) close(i < 5 ? b[i] : -2.5 * b[i], y[i], 1e-6, "scale n=" + n);

            float max = Float.NEGATIVE_INFINITY;
            int arg = -1;
            for (int i = 0; i < n; i++) if (a[i + 3] > max) { max = a[i + 3]; arg = i; }
            assertEquals(max, VectorOps.max(a, 3, n), "max n=" + n);
            assertEquals(arg, VectorOps.argmax(a, 3, n), "argmax n=" + n);
        }
        assertEquals(1, VectorOps.argmax(new float[]{1, 3, 3}, 0, 3), "first maximum on ties");
    }

    public static void rmsNormAndRope() {
        SplittableRandom r = new SplittableRandom(2);
        for (int n : SIZES) {
            float[] x = rand(r, n + 2, 3), w = rand(r, n, 1.5), out = new float[n + 4];
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double) x[i + 2] * x[i + 2];
            double inv = 1 / Math.sqrt(ss / n + 1e-5);
            VectorOps.rmsNorm(x, 2, w, out, 4, n, 1e-5f);
            for (int i = 0; i < n; i++) close(x[i + 2] * inv * w[i], out[i + 4], 1e-5, "rmsnorm n=" + n);

            int half = n;
            float[] v = rand(r, 2 * half + 1, 1), cos = rand(r, half + 3, 1), sin = rand(r, half + 3, 1);
            float[] got = v.clone();
            VectorOps.ropeRotateHalf(got, 1, cos, sin, 3, half);
            for (int i = 0; i < half; i++) {
                double a = v[1 + i], b = v[1 + half + i], c = cos[3 + i], s = sin[3 + i];
                close(a * c - b * s, got[1 + i], 1e-5, "rope lo n=" + n);
                close(b * c + a * s, got[1 + half + i], 1e-5, "rope hi n=" + n);
            }
        }
    }

    public static void siluMulSoftmaxLogSumExp() {
        SplittableRandom r = new SplittableRandom(4);
        for (int n : SIZES) {
            float[] g = rand(r, n + 1, 8), u = rand(r, n + 2, 2);
            float[] got = g.clone();
            Activations.siluMul(got, 1, u, 2, n);
            for (int i = 0; i < n; i++) {
                double x = g[i + 1];
                close(x / (1 + Math.exp(-x)) * u[i + 2], got[i + 1], 1e-5, "siluMul n=" + n);
            }

            float[] s = rand(r, n + 3, 20);
            float[] p = s.clone();
            Activations.softmax(p, 3, n);
            double m = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < n; i++) m = Math.max(m, s[i + 3]);
            for (int i = 0; i < n; i++) sum += Math.exp(s[i + 3] - m);
            for (int i = 0; i < n; i++) assertEquals(Math.exp(s[i + 3] - m) / sum, p[i + 3], 1e-6, "softmax n=" + n);
            for (int i = 0; i < 3; i++) assertEquals(s[i], p[i], "softmax stays in its range");
            assertEquals(m + Math.log(sum), Activations.logSumExp(s, 3, n), 1e-9 * Math.max(1, Math.abs(m)), "logSumExp n=" + n);
        }
    }

    public static void attendRowsMatchesNaive() {
        SplittableRandom r = new SplittableRandom(5);
        for (int hd : new int[]{2, 6, 8, 17, 64}) {
            for (int n0 : new int[]{1, 5, 33}) {
                for (int rows : new int[]{1, 3, 16}) {
                    int ld = n0 + rows + 2, qStride = hd + 3, pStride = n0 + rows + 1, outStride = hd + 1;
                    float[] q = rand(r, 1 + rows * qStride, 1), kt = rand(r, 2 + hd * ld, 1), vt = rand(r, 3 + hd * ld, 1);
                    float[] probs = new float[2 + rows * pStride];
                    java.util.Arrays.fill(probs, Float.NaN);   // stale scratch must not leak into the result
                    float[] out = new float[4 + rows * outStride];
                    float scale = (float) (1 / Math.sqrt(hd));
                    AttentionKernel.attendRows(q, 1, qStride, rows, kt, 2, vt, 3, ld, n0, hd, scale, probs, 2, pStride, out, 4, outStride);
                    for (int row = 0; row < rows; row++) {
                        int n = n0 + row;
                        double[] s = new double[n];
                        double m = Double.NEGATIVE_INFINITY, sum = 0;
                        for (int j = 0; j < n; j++) {
                            for (int i = 0; i < hd; i++) s[j] += (double) q[1 + row * qStride + i] * kt[2 + i * ld + j];
                            s[j] *= scale;
                            m = Math.max(m, s[j]);
                        }
                        for (int j = 0; j < n; j++) sum += s[j] = Math.exp(s[j] - m);
                        String what = "attention hd=" + hd + " n0=" + n0 + " row " + row;
                        for (int i = 0; i < hd; i++) {
                            double o = 0;
                            for (int j = 0; j < n; j++) o += s[j] / sum * vt[3 + i * ld + j];
                            close(o, out[4 + row * outStride + i], 1e-5, what);
                        }
                        for (int j = 0; j < n; j++) assertEquals(s[j] / sum, probs[2 + row * pStride + j], 1e-6, what);
                        for (int j = n; j < n0 + rows - 1; j++) assertEquals(0f, probs[2 + row * pStride + j], what);
                    }
                }
            }
        }
    }
}
