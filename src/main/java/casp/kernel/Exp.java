package casp.kernel;

/**
 * e^x in float with the same bits everywhere: in the interpreter and in C1 and C2 code, in the
 * vector loops ({@link ExpSimd}, lane by lane) and in their scalar tails and scalar paths, at every
 * vector width. The kernels' softmax, SiLU, GELU and quick GELU use it, so model outputs are
 * bit-reproducible from run to run.
 *
 * <p>Why not the library functions: the Vector API's EXP is computed with Math.exp while the
 * code is interpreted and with an SVML intrinsic once C2 compiles it, and the two differ in the
 * last bit, so results would depend on JIT timing (and on which elements fall in a vector's tail).
 *
 * <p>Method: exp(x) = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (Cody-Waite split of ln 2,
 * so r is exact), e^r by its Taylor polynomial to degree 7 in Horner form with fma (truncation
 * below 6e-9 relative on |r| <= ln 2 / 2), 2^n put together from its exponent bits.
 *
 * <p>Accuracy: within 1 ulp of e^x for x in [-87, 88] (0.94 ulp at worst, checked against
 * Math.exp on every float in that range). Inputs are clamped to [-87, 88]: below -87 (where e^x
 * is under 1.7e-38) the result is e^-87, about 1.6e-38, not 0; above 88 it is e^88, about
 * 1.65e38, not Infinity. NaN gives NaN.
 */
public final class Exp {
    private Exp() {}

    static final float LOG2E = 1.44269504088896341f;
    static final float LN2_HI = 0.693145751953125f, LN2_LO = 1.428606765330187045e-06f;
    static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
    static final float MAX_X = 88.0f, MIN_X = -87.0f;
    static final float E2 = 1f / 2, E3 = 1f / 6, E4 = 1f / 24, E5 = 1f / 120, E6 = 1f / 720, E7 = 1f / 5040;

    private static final boolean SIMD = VectorSupport.enabled();

    /** e^x, within 1 ulp on [-87, 88]; inputs are clamped to that range (see the class comment). */
    public static float exp(float x) {
        float c = Math.min(Math.max(x, MIN_X), MAX_X);
        float t = Math.fma(c, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, c);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(E7, r, E6);
        p = Math.fma(p, r, E5);
        p = Math.fma(p, r, E4);
        p = Math.fma(p, r, E3);
        p = Math.fma(p, r, E2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int bits = (Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUND) + 127) << 23;
        return p * Float.intBitsToFloat(bits);
    }

    /** x[off + i] = exp(x[off + i]) for i in [0, n): the same bits as {@link #exp(float)} on each element. */
    public static void exp(float[] x, int off, int n) {
        if (SIMD) {
            ExpSimd.exp(x, off, n);
            return;
        }
        for (int i = off; i < off + n; i++) x[i] = exp(x[i]);
    }
}
