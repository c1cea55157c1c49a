package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vector API matrix-vector products; loaded only when {@link VectorSupport#enabled()}. */
final class GemvSimd {
    private GemvSimd() {}

    static final VectorSpecies<Float> S = VectorProbe.floatSpecies();
    static final int L = S.length();

    /** y[r] = alpha * dot(A[r, :n], x) + beta * y[r] for rows r in [r0, r1); A row-major. */
    static void rows(int r0, int r1, int n, float alpha, float[] a, int offA, int lda,
                     float[] x, int offX, float beta, float[] y, int offY) {
        int nv = n - n % L;
        int r = r0;
        // Four rows at a time: each x vector is loaded once for four FMAs.
        for (; r + 4 <= r1; r += 4) {
            int a0 = offA + r * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < nv; j += L) {
                FloatVector xv = FloatVector.fromArray(S, x, offX + j);
                s0 = FloatVector.fromArray(S, a, a0 + j).fma(xv, s0);
                s1 = FloatVector.fromArray(S, a, a1 + j).fma(xv, s1);
                s2 = FloatVector.fromArray(S, a, a2 + j).fma(xv, s2);
                s3 = FloatVector.fromArray(S, a, a3 + j).fma(xv, s3);
            }
            float t0 = s0.reduceLanes(VectorOperators.ADD), t1 = s1.reduceLanes(VectorOperators.ADD);
            float t2 = s2.reduceLanes(VectorOperators.ADD), t3 = s3.reduceLanes(VectorOperators.ADD);
            for (int j = nv; j < n; j++) {
                float xv = x[offX + j];
                t0 += a[a0 + j] * xv; t1 += a[a1 + j] * xv; t2 += a[a2 + j] * xv; t3 += a[a3 + j] * xv;
            }
            store(y, offY + r, alpha * t0, beta);
            store(y, offY + r + 1, alpha * t1, beta);
            store(y, offY + r + 2, alpha * t2, beta);
            store(y, offY + r + 3, alpha * t3, beta);
        }
        for (; r < r1; r++) {
            int a0 = offA + r * lda;
            FloatVector s0 = FloatVector.zero(S), s1 = s0;
            int j = 0;
            for (; j + 2 * L <= nv; j += 2 * L) {
                s0 = FloatVector.fromArray(S, a, a0 + j).fma(FloatVector.fromArray(S, x, offX + j), s0);
                s1 = FloatVector.fromArray(S, a, a0 + j + L).fma(FloatVector.fromArray(S, x, offX + j + L), s1);
            }
            for (; j < nv; j += L) {
                s0 = FloatVector.fromArray(S, a, a0 + j).fma(FloatVector.fromArray(S, x, offX + j), s0);
            }
            float t = s0.add(s1).reduceLanes(VectorOperators.ADD);
            for (; j < n; j++) t += a[a0 + j] * x[offX + j];
            store(y, offY + r, alpha * t, beta);
        }
    }

    private static void store(float[] y, int i, float v, float beta) {
        y[i] = beta == 0 ? v : v + beta * y[i];
    }

    /** y[j0..j1) += sum over rows i in [0, m) of (alpha x[i]) * A[i, j0..j1) (y already scaled by beta). */
    static void columns(int j0, int j1, int m, float alpha, float[] a, int offA, int lda,
                        float[] x, int offX, float[] y, int offY) {
        int w = j1 - j0;
        int wv = w - w % L;
        int i = 0;
        // Four rows at a time: one load and store of y per four rows of A.
        for (; i + 4 <= m; i += 4) {
            float x0 = alpha * x[offX + i], x1 = alpha * x[offX + i + 1];
            float x2 = alpha * x[offX + i + 2], x3 = alpha * x[offX + i + 3];
            FloatVector v0 = FloatVector.broadcast(S, x0), v1 = FloatVector.broadcast(S, x1);
            FloatVector v2 = FloatVector.broadcast(S, x2), v3 = FloatVector.broadcast(S, x3);
            int a0 = offA + i * lda + j0, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, yi = offY + j0;
            int j = 0;
            for (; j < wv; j += L) {
                FloatVector acc = FloatVector.fromArray(S, y, yi + j);
                acc = FloatVector.fromArray(S, a, a0 + j).fma(v0, acc);
                acc = FloatVector.fromArray(S, a, a1 + j).fma(v1, acc);
                acc = FloatVector.fromArray(S, a, a2 + j).fma(v2, acc);
                acc = FloatVector.fromArray(S, a, a3 + j).fma(v3, acc);
                acc.intoArray(y, yi + j);
            }
            for (; j < w; j++) y[yi + j] += x0 * a[a0 + j] + x1 * a[a1 + j] + x2 * a[a2 + j] + x3 * a[a3 + j];
        }
        for (; i < m; i++) {
            float xi = alpha * x[offX + i];
            FloatVector xb = FloatVector.broadcast(S, xi);
            int ai = offA + i * lda + j0, yi = offY + j0;
            int j = 0;
            for (; j < wv; j += L) {
                FloatVector.fromArray(S, a, ai + j).fma(xb, FloatVector.fromArray(S, y, yi + j)).intoArray(y, yi + j);
            }
            for (; j < w; j++) y[yi + j] += xi * a[ai + j];
        }
    }
}
