package casp.kernel;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Checks of {@link VisionOps}, each kernel against a naive float64 implementation at sizes
 * around the vector length; {@link VisionOpsTest} runs them at every vector width.
 */
public final class VisionChecks {
    private VisionChecks() {}

    /** Every check, by method name. */
    public static final String[] ALL = {"layerNormMatchesNaive", "activationsMatchNaive", "erfOracleIsRight",
            "geluVectorLoopsAreBitIdenticalToScalar", "softmaxMatchesNaive", "biasAndResidualAdds"};

    /** The vector width these classes run at (0 = scalar paths). */
    public static int bits() {
        return VectorSupport.bits();
    }
    private static final int[] SIZES = {1, 3, 7, 8, 16, 17, 33, 64, 129, 200};

    private static float[] rand(Random r, int n, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * scale);
        return x;
    }

    public static void layerNormMatchesNaive() {
        Random r = new Random(1);
        for (int n : SIZES) {
            int rows = 3;
            float[] x = rand(r, rows * n + 5, 3f), g = rand(r, n, 1f), b = rand(r, n, 1f);
            for (int i = 0; i < x.length; i++) x[i] += 10f; // offset mean: the two-pass variance must cope
            float[] out = new float[rows * n + 2];
            VisionOps.layerNorm(x, 5, out, 2, rows, n, g, b, 1e-5f);
            for (int row = 0; row < rows; row++) {
                double m = 0, v = 0;
                for (int i = 0; i < n; i++) m += x[5 + row * n + i];
                m /= n;
                for (int i = 0; i < n; i++) v += (x[5 + row * n + i] - m) * (x[5 + row * n + i] - m);
                v /= n;
                for (int i = 0; i < n; i++) {
                    double want = (x[5 + row * n + i] - m) / Math.sqrt(v + 1e-5) * g[i] + b[i];
                    assertEquals(want, out[2 + row * n + i], 2e-5 * (1 + Math.abs(want)), "n=" + n);
                }
            }
            assertEquals(0f, out[0]);
            assertEquals(0f, out[1]);
        }
    }

    public static void activationsMatchNaive() {
        Random r = new Random(2);
        for (int n : SIZES) {
            float[] x = rand(r, n + 4, 4f);
            x[4] = 0f;
            float[] q = x.clone(), g = x.clone();
            VisionOps.quickGelu(q, 4, n);
            VisionOps.gelu(g, 4, n);
            for (int i = 0; i < 4; i++) {
                assertEquals(x[i], q[i]);
                assertEquals(x[i], g[i]);
            }
            for (int i = 4; i < n + 4; i++) {
                double v = x[i];
                double wantQ = v / (1 + Math.exp(-1.702 * v));
                double wantG = 0.5 * v * (1 + erf(v / Math.sqrt(2)));
                assertEquals(wantQ, q[i], 1e-6 * (1 + Math.abs(v)), "quick_gelu(" + v + ")");
                assertEquals(wantG, g[i], 1.5e-7 * (1 + Math.abs(v)), "gelu(" + v + ")");
            }
        }
        // Far tails: gelu(x) -> x for large x, -> 0 for very negative x.
        float[] t = {-30f, -8f, 8f, 30f};
        VisionOps.gelu(t, 0, 4);
        assertEquals(0f, t[0], 1e-6f);
        assertEquals(0f, t[1], 1e-6f);
        assertEquals(8f, t[2], 1e-6f);
        assertEquals(30f, t[3], 1e-6f);
    }

    /** erf by its Maclaurin series / continued fraction in float64, accurate to ~1e-15 (the oracle). */
    public static double erf(double x) {
        double a = Math.abs(x);
        double r;
        if (a < 3) {
            double sum = 0, term = a;
            for (int k = 0; k < 200; k++) {
                sum += term / (2 * k + 1);
                term *= -a * a / (k + 1);
            }
            r = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            // erfc continued fraction (Lentz), converges fast for a >= 3
            double f = a, c = a, d = 0;
            for (int k = 1; k < 100; k++) {
                double an = k / 2.0;
                d = a + an * d;
                d = 1 / d;
                c = a + an / c;
                f *= c * d;
            }
            r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }

    public static void erfOracleIsRight() {
        assertEquals(0.8427007929497149, erf(1.0), 1e-14);
        assertEquals(0.9999779095030014, erf(3.0), 1e-14);
        assertEquals(-0.5204998778130465, erf(-0.5), 1e-14);
        for (double x = -5; x <= 5; x += 0.01) assertEquals(erf(x), VisionOps.erf((float) x), 1.5e-7, "erf(" + x + ")");
    }

    /** The vector loops use the same operations (and the same {@link Exp}) as the scalar functions: same bits, any width. */
    public static void geluVectorLoopsAreBitIdenticalToScalar() {
        Random r = new Random(5);
        for (int n : SIZES) {
            float[] x = rand(r, n, 6f);
            float[] q = x.clone(), g = x.clone();
            VisionOps.quickGelu(q, 0, n);
            VisionOps.gelu(g, 0, n);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToIntBits(VisionOps.quickGelu(x[i])), Float.floatToIntBits(q[i]), "quick_gelu " + x[i]);
                assertEquals(Float.floatToIntBits(VisionOps.gelu(x[i])), Float.floatToIntBits(g[i]), "gelu " + x[i]);
            }
        }
    }

    public static void softmaxMatchesNaive() {
        Random r = new Random(3);
        for (int n : SIZES) {
            int rows = 2, stride = n + 3;
            float[] x = rand(r, rows * stride + 1, 5f);
            float[] y = x.clone();
            VisionOps.softmax(y, 1, rows, n, stride);
            assertEquals(x[0], y[0]);
            for (int row = 0; row < rows; row++) {
                int o = 1 + row * stride;
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int i = 0; i < n; i++) max = Math.max(max, x[o + i]);
                for (int i = 0; i < n; i++) sum += Math.exp(x[o + i] - max);
                for (int i = 0; i < n; i++) assertEquals(Math.exp(x[o + i] - max) / sum, y[o + i], 1e-6, "n=" + n);
                for (int i = n; i < stride; i++) assertEquals(x[o + i], y[o + i]); // padding untouched
            }
        }
    }

    public static void biasAndResidualAdds() {
        Random r = new Random(4);
        for (int n : SIZES) {
            float[] y = rand(r, 2 * n + 1, 1f), b = rand(r, n, 1f), src = rand(r, 2 * n + 3, 1f);
            float[] y1 = y.clone();
            VisionOps.addBias(y1, 1, 2, n, b);
            assertEquals(y[0], y1[0]);
            for (int i = 0; i < 2 * n; i++) assertEquals(y[1 + i] + b[i % n], y1[1 + i], 0f);
            float[] y2 = y.clone();
            VisionOps.add(y2, 1, src, 3, 2 * n);
            for (int i = 0; i < 2 * n; i++) assertEquals(y[1 + i] + src[3 + i], y2[1 + i], 0f);
        }
    }
}
