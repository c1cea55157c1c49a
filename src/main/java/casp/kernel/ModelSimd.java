package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API bodies of {@link VectorOps}, {@link Activations} and the attention's weighted sums
 * ({@link AttentionKernel}); loaded only when
 * {@link VectorSupport#enabled()}, at the width it chose. exp is {@link ExpSimd}'s, so SiLU and
 * softmax give the scalar code's bits in every lane.
 */
final class ModelSimd {
    private ModelSimd() {}

    static final VectorSpecies<Float> S = VectorProbe.floatSpecies();
    static final int L = S.length();

    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        float sum = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            int bound = S.loopBound(n);
            for (; i < bound; i += L)
                acc = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc);
            sum = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) sum += a[aOff + i] * b[bOff + i];
        return sum;
    }

    static void add(float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L)
            FloatVector.fromArray(S, x, xOff + i).add(FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    static void scale(float[] x, int off, int n, float s) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L) FloatVector.fromArray(S, x, off + i).mul(s).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] *= s;
    }

    /** out[outOff+i] = (x[xOff+i] * s) * w[i]. */
    static void scaleMul(float[] x, int xOff, float s, float[] w, float[] out, int outOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L)
            FloatVector.fromArray(S, x, xOff + i).mul(s).mul(FloatVector.fromArray(S, w, i)).intoArray(out, outOff + i);
        for (; i < n; i++) out[outOff + i] = (x[xOff + i] * s) * w[i];
    }

    static void ropeRotateHalf(float[] x, int off, float[] cos, float[] sin, int csOff, int half) {
        int i = 0;
        int bound = S.loopBound(half);
        for (; i < bound; i += L) {
            FloatVector a = FloatVector.fromArray(S, x, off + i);
            FloatVector b = FloatVector.fromArray(S, x, off + half + i);
            FloatVector c = FloatVector.fromArray(S, cos, csOff + i);
            FloatVector s = FloatVector.fromArray(S, sin, csOff + i);
            a.mul(c).sub(b.mul(s)).intoArray(x, off + i);
            b.mul(c).add(a.mul(s)).intoArray(x, off + half + i);
        }
        for (; i < half; i++) {
            float a = x[off + i], b = x[off + half + i], c = cos[csOff + i], s = sin[csOff + i];
            x[off + i] = a * c - b * s;
            x[off + half + i] = b * c + a * s;
        }
    }

    static float max(float[] x, int off, int n) {
        int i = 0;
        float m = Float.NEGATIVE_INFINITY;
        int bound = S.loopBound(n);
        if (bound > 0) {
            FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (; i < bound; i += L) acc = acc.max(FloatVector.fromArray(S, x, off + i));
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) m = Math.max(m, x[off + i]);
        return m;
    }

    static void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L) {
            FloatVector g = FloatVector.fromArray(S, gate, gOff + i);
            FloatVector denom = ExpSimd.exp(g.neg()).add(1f);
            g.div(denom).mul(FloatVector.fromArray(S, up, uOff + i)).intoArray(gate, gOff + i);
        }
        for (; i < n; i++) gate[gOff + i] = Activations.silu(gate[gOff + i]) * up[uOff + i];
    }

    /** x[off+i] = exp(x[off+i] - m); returns the sum. */
    static float expShiftSum(float[] x, int off, int n, float m) {
        int i = 0;
        int bound = S.loopBound(n);
        float sum = 0f;
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; i < bound; i += L) {
                FloatVector e = ExpSimd.exp(FloatVector.fromArray(S, x, off + i).sub(m));
                e.intoArray(x, off + i);
                acc = acc.add(e);
            }
            sum = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) {
            float e = Exp.exp(x[off + i] - m);
            x[off + i] = e;
            sum += e;
        }
        return sum;
    }
}
