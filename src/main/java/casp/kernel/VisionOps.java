package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise and row-wise kernels of the CLIP vision tower and the LLaVA projector:
 * LayerNorm, GELU (exact, erf), quick GELU, softmax, bias add and residual add. All work on
 * row-major float arrays in place or into a destination; rows of length n start at off + r * n.
 *
 * <p>exp is computed here with plain multiply/fma arithmetic ({@link #exp(float)}), not with the
 * Vector API's EXP: that one is Math.exp while the code is interpreted and an SVML intrinsic once
 * C2 compiles it, which differ in the last bit, so results would depend on JIT timing. Ours gives
 * the same bits in every tier, in the vector loop and in the scalar tail, at every vector width.
 */
public final class VisionOps {
    private VisionOps() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    // exp(x) = 2^n * e^r, n = round(x / ln 2), r = x - n ln 2 (Cody-Waite split of ln 2), e^r by its
    // Taylor polynomial to degree 7 (truncation < 6e-9 relative on |r| <= ln2 / 2): within 2 ulp of e^x.
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693145751953125f, LN2_LO = 1.428606765330187045e-06f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds to an integer
    private static final float MAX_X = 88.0f, MIN_X = -87.0f;
    private static final float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720, C7 = 1f / 5040;

    /** e^x with the same bits as the vector kernels use; inputs are clamped to [-87, 88] (so -inf gives ~1.6e-38). */
    public static float exp(float x) {
        float c = Math.min(Math.max(x, MIN_X), MAX_X);
        float t = Math.fma(c, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, c);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(C7, r, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int bits = (Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUND) + 127) << 23;
        return p * Float.intBitsToFloat(bits);
    }

    /** Lane-wise {@link #exp(float)}, the same operations in the same order. Small, so C2 inlines it. */
    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(MIN_X).min(MAX_X);
        FloatVector t = c.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), c);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(S, C7).fma(r, FloatVector.broadcast(S, C6));
        p = p.fma(r, FloatVector.broadcast(S, C5));
        p = p.fma(r, FloatVector.broadcast(S, C4));
        p = p.fma(r, FloatVector.broadcast(S, C3));
        p = p.fma(r, FloatVector.broadcast(S, C2));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        IntVector bits = t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND) - 127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /**
     * LayerNorm of each of {@code rows} rows of length n: out = (x - mean) / sqrt(var + eps) * gamma + beta,
     * with the biased variance like torch. Statistics are accumulated in float64 over a float32
     * vector partial sum, so long rows do not lose precision. out may be x.
     */
    public static void layerNorm(float[] x, int xOff, float[] out, int outOff, int rows, int n,
                                 float[] gamma, float[] beta, float eps) {
        for (int r = 0; r < rows; r++) {
            int xo = xOff + r * n, oo = outOff + r * n;
            double mean = sum(x, xo, n) / n;
            float m = (float) mean;
            // Two-pass variance: the centred sum of squares is exact enough, unlike E[x^2] - E[x]^2.
            FloatVector mv = FloatVector.broadcast(S, m);
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) {
                FloatVector d = FloatVector.fromArray(S, x, xo + i).sub(mv);
                acc = d.fma(d, acc);
            }
            double ss = acc.reduceLanes(VectorOperators.ADD);
            for (; i < n; i++) {
                double d = x[xo + i] - m;
                ss += d * d;
            }
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            FloatVector iv = FloatVector.broadcast(S, inv);
            i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i).sub(mv).mul(iv);
                v.fma(FloatVector.fromArray(S, gamma, i), FloatVector.fromArray(S, beta, i)).intoArray(out, oo + i);
            }
            for (; i < n; i++) out[oo + i] = (x[xo + i] - m) * inv * gamma[i] + beta[i];
        }
    }

    private static double sum(float[] x, int off, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) acc = acc.add(FloatVector.fromArray(S, x, off + i));
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += x[off + i];
        return s;
    }

    /** y[r, :] += bias for each of rows rows of length n. */
    public static void addBias(float[] y, int off, int rows, int n, float[] bias) {
        for (int r = 0; r < rows; r++) {
            int o = off + r * n, i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L)
                FloatVector.fromArray(S, y, o + i).add(FloatVector.fromArray(S, bias, i)).intoArray(y, o + i);
            for (; i < n; i++) y[o + i] += bias[i];
        }
    }

    /** dst[dOff + i] += src[sOff + i] for i in [0, n). */
    public static void add(float[] dst, int dOff, float[] src, int sOff, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L)
            FloatVector.fromArray(S, dst, dOff + i).add(FloatVector.fromArray(S, src, sOff + i)).intoArray(dst, dOff + i);
        for (; i < n; i++) dst[dOff + i] += src[sOff + i];
    }

    /** In place: x * sigmoid(1.702 x) (CLIP's quick_gelu). */
    public static void quickGelu(float[] x, int off, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, off + i);
            FloatVector e = exp(v.mul(-1.702f));
            v.div(e.add(one)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = quickGelu(x[off + i]);
    }

    /** Scalar quick_gelu, bit-identical to the vector loop. */
    public static float quickGelu(float v) {
        return v / (exp(v * -1.702f) + 1f);
    }

    // erf(z): for |z| < 1 the odd Maclaurin series to z^21 (truncation < 1.3e-8); beyond, erfc(|z|) by
    // the Chebyshev-fitted formula of Numerical Recipes (erfcc: t = 1 / (1 + |z|/2),
    // erfc = t exp(-z^2 + poly(t)), relative error < 1.2e-7), whose absolute error shrinks with erfc.
    private static final float[] R = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
            0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    private static final float INV_SQRT2 = 0.70710678118654752f;
    /** 2/sqrt(pi) * (-1)^k / (k! (2k+1)), k = 0..10: erf(z) = z * sum_k C[k] z^(2k). */
    private static final float[] C = new float[11];

    static {
        double f = 1;
        for (int k = 0; k <= 10; k++) {
            if (k > 0) f *= k;
            C[k] = (float) (2 / Math.sqrt(Math.PI) * (k % 2 == 0 ? 1 : -1) / (f * (2 * k + 1)));
        }
    }

    /** In place: exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch's default gelu). */
    public static void gelu(float[] x, int off, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f), half = FloatVector.broadcast(S, 0.5f);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, off + i);
            FloatVector z = v.mul(INV_SQRT2);
            FloatVector a = z.abs();
            FloatVector z2 = z.mul(z);
            // series branch (valid where |z| < 1)
            FloatVector s = FloatVector.broadcast(S, C[10]);
            for (int k = 9; k >= 0; k--) s = s.fma(z2, FloatVector.broadcast(S, C[k]));
            FloatVector series = s.mul(z);
            // tail branch (|z| >= 1), odd symmetry: erf(z) = sign(z) * (1 - erfc(|z|))
            FloatVector t = one.div(a.mul(0.5f).add(one));
            FloatVector p = FloatVector.broadcast(S, R[9]);
            for (int k = 8; k >= 0; k--) p = p.fma(t, FloatVector.broadcast(S, R[k]));
            FloatVector erfc = t.mul(exp(p.sub(z2)));
            FloatVector tailAbs = one.sub(erfc);
            FloatVector tail = tailAbs.blend(tailAbs.neg(), z.compare(VectorOperators.LT, 0f));
            FloatVector erf = tail.blend(series, a.compare(VectorOperators.LT, 1f));
            v.mul(half).mul(erf.add(one)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = gelu(x[off + i]);
    }

    /** Scalar exact GELU with the same erf approximation as the vector loop. */
    public static float gelu(float v) {
        return 0.5f * v * (1f + erf(v * INV_SQRT2));
    }

    /** erf(z) with absolute error below 1.5e-7, about 2 float32 ulps (series for |z| < 1, Numerical Recipes' erfc fit beyond). */
    public static float erf(float z) {
        float a = Math.abs(z);
        if (a < 1f) {
            float z2 = z * z, s = C[10];
            for (int k = 9; k >= 0; k--) s = Math.fma(s, z2, C[k]);
            return s * z;
        }
        float t = 1f / (1f + 0.5f * a);
        float p = R[9];
        for (int k = 8; k >= 0; k--) p = Math.fma(p, t, R[k]);
        float r = 1f - t * exp(p - a * a);
        return z < 0 ? -r : r;
    }

    /**
     * Row-wise softmax in place over the first {@code len} entries of each of rows rows of stride
     * {@code stride}; entries in [len, stride) are untouched. Subtracts the row max first.
     */
    public static void softmax(float[] x, int off, int rows, int len, int stride) {
        for (int r = 0; r < rows; r++) {
            int o = off + r * stride;
            float max = Float.NEGATIVE_INFINITY;
            int i = 0;
            if (len >= L) {
                FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
                for (int bound = S.loopBound(len); i < bound; i += L) mv = mv.max(FloatVector.fromArray(S, x, o + i));
                max = mv.reduceLanes(VectorOperators.MAX);
            }
            for (; i < len; i++) max = Math.max(max, x[o + i]);
            FloatVector mx = FloatVector.broadcast(S, max);
            FloatVector acc = FloatVector.zero(S);
            i = 0;
            for (int bound = S.loopBound(len); i < bound; i += L) {
                FloatVector e = exp(FloatVector.fromArray(S, x, o + i).sub(mx));
                e.intoArray(x, o + i);
                acc = acc.add(e);
            }
            double sum = acc.reduceLanes(VectorOperators.ADD);
            for (; i < len; i++) {
                float e = exp(x[o + i] - max);
                x[o + i] = e;
                sum += e;
            }
            FloatVector inv = FloatVector.broadcast(S, (float) (1.0 / sum));
            i = 0;
            for (int bound = S.loopBound(len); i < bound; i += L)
                FloatVector.fromArray(S, x, o + i).mul(inv).intoArray(x, o + i);
            float invS = (float) (1.0 / sum);
            for (; i < len; i++) x[o + i] *= invS;
        }
    }
}
