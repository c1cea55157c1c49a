package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

/**
 * Checks of the deterministic {@link Exp}: accuracy against Math.exp, and the same bits from the
 * vector body, the scalar tail and the scalar function, also through SiLU and softmax.
 * {@link ExpTest} runs them at every vector width.
 */
public final class ExpChecks {
    private ExpChecks() {}

    /** Every check, by method name. */
    public static final String[] ALL = {"withinOneUlpOfMathExp", "clampsOutsideItsRange", "vectorBodyAndScalarTailAgree",
            "siluAndSoftmaxAgreeAcrossBodyAndTail"};

    /** The vector width these classes run at (0 = scalar paths). */
    public static int bits() {
        return VectorSupport.bits();
    }

    private static final int[] SIZES = {1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 129, 1000};

    private static void assertWithinOneUlp(float x, float got) {
        double want = Math.exp(x);
        double err = Math.abs(got - want) / Math.ulp((float) want);
        if (!(err <= 1.0)) throw new AssertionError("exp(" + x + ") = " + got + ", want " + want + ": " + err + " ulp");
    }

    /** The documented bound, 1 ulp, on a fine grid and on random floats over all of [-87, 88], scalar and vector. */
    public static void withinOneUlpOfMathExp() {
        float[] x = new float[175_001 + 200_000 + 8];
        int k = 0;
        for (int i = 0; i <= 175_000; i++) x[k++] = Math.min(88f, (float) (-87 + i * 0.001));
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) x[k++] = (float) (-87 + 175 * r.nextDouble());
        for (float v : new float[] {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-30f, -1e-30f, -87f, 88f}) x[k++] = v;
        float[] y = x.clone();
        Exp.exp(y, 0, y.length);
        for (int i = 0; i < x.length; i++) {
            assertWithinOneUlp(x[i], Exp.exp(x[i]));
            assertWithinOneUlp(x[i], y[i]);
        }
        assertEquals(1f, Exp.exp(0f));
        assertEquals(1f, Exp.exp(-0f));
    }

    /** Outside [-87, 88] the input is clamped: small positive below, finite above, NaN stays NaN. */
    public static void clampsOutsideItsRange() {
        float low = Exp.exp(-87f), high = Exp.exp(88f);
        assertTrue(low > 0 && low < 1.7e-38f, "exp(-87) = " + low);
        assertTrue(high > 1.6e38f && high < Float.POSITIVE_INFINITY, "exp(88) = " + high);
        float[] x = {-88f, -1000f, Float.NEGATIVE_INFINITY, -Float.MAX_VALUE, 89f, 1000f, Float.POSITIVE_INFINITY, Float.NaN};
        float[] y = x.clone();
        Exp.exp(y, 0, y.length);
        for (int i = 0; i < x.length; i++) {
            float want = Float.isNaN(x[i]) ? Float.NaN : x[i] < 0 ? low : high;
            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(Exp.exp(x[i])), "exp(" + x[i] + ")");
            assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(y[i]), "array exp(" + x[i] + ")");
        }
    }

    /**
     * The array form (vector body plus scalar tail) gives each element the bits of the scalar
     * function, at every length and offset; and one value gives one result wherever it sits.
     */
    public static void vectorBodyAndScalarTailAgree() {
        SplittableRandom r = new SplittableRandom(2);
        for (int n : SIZES) {
            float[] x = new float[n + 3];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 200 - 100);
            float[] y = x.clone();
            Exp.exp(y, 3, n);
            for (int i = 0; i < 3; i++) assertEquals(x[i], y[i], "exp wrote before its range");
            for (int i = 3; i < n + 3; i++) {
                assertEquals(Float.floatToIntBits(Exp.exp(x[i])), Float.floatToIntBits(y[i]), "exp(" + x[i] + ") n=" + n + " at " + i);
            }
        }
        // 35 = 2 * 16 + 3: at every width the first 32 elements go through the vector body, the last 3 through the tail.
        for (float v : new float[] {-86.5f, -20.25f, -1.5f, -1e-3f, 0.7f, 3.3f, 42f, 87.9f}) {
            float[] y = new float[35];
            java.util.Arrays.fill(y, v);
            Exp.exp(y, 0, y.length);
            for (float e : y) assertEquals(Float.floatToIntBits(y[0]), Float.floatToIntBits(e), "exp(" + v + ") depends on its position");
        }
    }

    /**
     * Bits do not depend on the JIT tier: results of the first calls (interpreted when this class
     * and the kernels were loaded afresh, see ExpTest) equal those after the loops are compiled.
     * Not in {@link #ALL}: it only means something in a loader of its own.
     */
    public static void coldEqualsCompiled() {
        SplittableRandom r = new SplittableRandom(4);
        int n = 1027;
        float[] x = new float[n], up = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * 6);
            up[i] = (float) r.nextGaussian();
        }
        float[] e0 = x.clone(), s0 = x.clone(), p0 = x.clone();
        Exp.exp(e0, 0, n);
        Activations.siluMul(s0, 0, up, 0, n);
        Activations.softmax(p0, 0, n);
        for (int rep = 0; rep < 4000; rep++) {
            float[] e = x.clone(), s = x.clone(), p = x.clone();
            Exp.exp(e, 0, n);
            Activations.siluMul(s, 0, up, 0, n);
            Activations.softmax(p, 0, n);
            for (int i = 0; i < n; i++) {
                if (Float.floatToIntBits(e[i]) != Float.floatToIntBits(e0[i])
                        || Float.floatToIntBits(s[i]) != Float.floatToIntBits(s0[i])
                        || Float.floatToIntBits(p[i]) != Float.floatToIntBits(p0[i])) {
                    throw new AssertionError("call " + rep + " differs from the first at " + i + ": exp " + e[i] + " vs " + e0[i]
                            + ", silu " + s[i] + " vs " + s0[i] + ", softmax " + p[i] + " vs " + p0[i] + " (vector bits " + bits() + ")");
                }
            }
        }
    }

    /** SiLU and softmax take exp from the same place: equal inputs give equal bits in body and tail. */
    public static void siluAndSoftmaxAgreeAcrossBodyAndTail() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : SIZES) {
            float[] g = new float[n + 1], u = new float[n + 2];
            for (int i = 0; i < g.length; i++) g[i] = (float) (r.nextGaussian() * 8);
            for (int i = 0; i < u.length; i++) u[i] = (float) (r.nextGaussian() * 2);
            float[] got = g.clone();
            Activations.siluMul(got, 1, u, 2, n);
            for (int i = 0; i < n; i++) {
                float want = Activations.silu(g[i + 1]) * u[i + 2];
                assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i + 1]), "siluMul n=" + n + " at " + i);
            }
            // softmax over a row made of two repeated values: equal inputs must give equal probabilities
            float[] p = new float[n];
            for (int i = 0; i < n; i++) p[i] = i % 3 == 0 ? 1.25f : -3.5f;
            Activations.softmax(p, 0, n);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToIntBits(p[i % 3 == 0 ? 0 : 1]), Float.floatToIntBits(p[i]), "softmax n=" + n + " at " + i);
            }
        }
    }
}
