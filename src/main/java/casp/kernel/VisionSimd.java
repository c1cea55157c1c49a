package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import static casp.kernel.VisionOps.*;

/**
 * Vector API bodies of {@link VisionOps}; loaded only when {@link VectorSupport#enabled()}, at
 * the width it chose. Element-wise functions repeat the scalar operations in the same order (fma
 * where the scalar code has Math.fma), so every lane has the scalar result's bits.
 */
final class VisionSimd {
    private VisionSimd() {}

    static final VectorSpecies<Float> S = VectorProbe.floatSpecies();
    static final int L = S.length();

    static void layerNorm(float[] x, int xOff, float[] out, int outOff, int rows, int n,
                          float[] gamma, float[] beta, float eps) {
        for (int r = 0; r < rows; r++) {
            int xo = xOff + r * n, oo = outOff + r * n;
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) acc = acc.add(FloatVector.fromArray(S, x, xo + i));
            double s = acc.reduceLanes(VectorOperators.ADD);
            for (; i < n; i++) s += x[xo + i];
            float m = (float) (s / n);
            FloatVector mv = FloatVector.broadcast(S, m);
            acc = FloatVector.zero(S);
            i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) {
                FloatVector d = FloatVector.fromArray(S, x, xo + i).sub(mv);
                acc = d.fma(d, acc);
            }
            double ss = acc.reduceLanes(VectorOperators.ADD);
            for (; i < n; i++) {
                float d = x[xo + i] - m;
                ss += d * d;
            }
            float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
            i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, xo + i).sub(mv).mul(inv);
                v.fma(FloatVector.fromArray(S, gamma, i), FloatVector.fromArray(S, beta, i)).intoArray(out, oo + i);
            }
            for (; i < n; i++) out[oo + i] = Math.fma((x[xo + i] - m) * inv, gamma[i], beta[i]);
        }
    }

    static void addBias(float[] y, int off, int rows, int n, float[] bias) {
        for (int r = 0; r < rows; r++) {
            int o = off + r * n, i = 0;
            for (int bound = S.loopBound(n); i < bound; i += L)
                FloatVector.fromArray(S, y, o + i).add(FloatVector.fromArray(S, bias, i)).intoArray(y, o + i);
            for (; i < n; i++) y[o + i] += bias[i];
        }
    }

    static void add(float[] dst, int dOff, float[] src, int sOff, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L)
            FloatVector.fromArray(S, dst, dOff + i).add(FloatVector.fromArray(S, src, sOff + i)).intoArray(dst, dOff + i);
        for (; i < n; i++) dst[dOff + i] += src[sOff + i];
    }

    static void quickGelu(float[] x, int off, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, off + i);
            v.div(ExpSimd.exp(v.mul(-1.702f)).add(one)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = VisionOps.quickGelu(x[off + i]);
    }

    static void gelu(float[] x, int off, int n) {
        FloatVector one = FloatVector.broadcast(S, 1f), half = FloatVector.broadcast(S, 0.5f);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, off + i);
            FloatVector z = v.mul(INV_SQRT2);
            FloatVector a = z.abs();
            FloatVector z2 = z.mul(z);
            // series branch (used where |z| < 1)
            FloatVector s = FloatVector.broadcast(S, C[10]);
            for (int k = 9; k >= 0; k--) s = s.fma(z2, FloatVector.broadcast(S, C[k]));
            FloatVector series = s.mul(z);
            // tail branch (|z| >= 1), odd symmetry: erf(z) = sign(z) * (1 - erfc(|z|))
            FloatVector t = one.div(a.mul(0.5f).add(one));
            FloatVector p = FloatVector.broadcast(S, R[9]);
            for (int k = 8; k >= 0; k--) p = p.fma(t, FloatVector.broadcast(S, R[k]));
            FloatVector tailAbs = one.sub(t.mul(ExpSimd.exp(p.sub(z2))));
            FloatVector tail = tailAbs.blend(tailAbs.neg(), z.compare(VectorOperators.LT, 0f));
            FloatVector erf = tail.blend(series, a.compare(VectorOperators.LT, 1f));
            v.mul(half).mul(erf.add(one)).intoArray(x, off + i);
        }
        for (; i < n; i++) x[off + i] = VisionOps.gelu(x[off + i]);
    }

    static void softmax(float[] x, int off, int rows, int len, int stride) {
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
                FloatVector e = ExpSimd.exp(FloatVector.fromArray(S, x, o + i).sub(mx));
                e.intoArray(x, o + i);
                acc = acc.add(e);
            }
            double sum = acc.reduceLanes(VectorOperators.ADD);
            for (; i < len; i++) {
                float e = Exp.exp(x[o + i] - max);
                x[o + i] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            i = 0;
            for (int bound = S.loopBound(len); i < bound; i += L)
                FloatVector.fromArray(S, x, o + i).mul(inv).intoArray(x, o + i);
            for (; i < len; i++) x[o + i] *= inv;
        }
    }
}
