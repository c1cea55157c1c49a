package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Small vectorised loops over float arrays used by the model's forward pass: dot products,
 * axpy, RMSNorm, rotary embeddings, argmax and a dense row-major mat-vec.
 * Every method takes arrays and offsets (never vectors), so nothing is boxed across calls.
 */
public final class VectorOps {
    private VectorOps() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();

    /** Sum of a[aOff+i] * b[bOff+i] for i in [0, n). */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
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

    /** y[yOff+i] += alpha * x[xOff+i] for i in [0, n). */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        if (bound > 0) {
            FloatVector a = FloatVector.broadcast(S, alpha);
            for (; i < bound; i += L)
                FloatVector.fromArray(S, x, xOff + i).fma(a, FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    /** y[yOff+i] += x[xOff+i] for i in [0, n). */
    public static void add(float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L)
            FloatVector.fromArray(S, x, xOff + i).add(FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    /** Adds the same row (e.g. a bias) to each of rows consecutive rows of y: y[r*n+i] += row[i]. */
    public static void addRowToEach(float[] row, int rowOff, float[] y, int yOff, int rows, int n) {
        for (int r = 0; r < rows; r++) add(row, rowOff, y, yOff + r * n, n);
    }

    /** x[off+i] *= s for i in [0, n). */
    public static void scale(float[] x, int off, int n, float s) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L) FloatVector.fromArray(S, x, off + i).mul(s).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] *= s;
    }

    /**
     * RMSNorm of one row as Hugging Face computes it in float32:
     * out = w * (x / sqrt(mean(x^2) + eps)). out may alias x.
     */
    public static void rmsNorm(float[] x, int xOff, float[] w, float[] out, int outOff, int n, float eps) {
        float ss = dot(x, xOff, x, xOff, n);
        float inv = (float) (1.0 / Math.sqrt(ss / n + eps));
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += L)
            FloatVector.fromArray(S, x, xOff + i).mul(inv).mul(FloatVector.fromArray(S, w, i)).intoArray(out, outOff + i);
        for (; i < n; i++) out[outOff + i] = (x[xOff + i] * inv) * w[i];
    }

    /** RMSNorm of rows consecutive rows of width n (x and out row-major, may alias). */
    public static void rmsNormRows(float[] x, int xOff, float[] w, float[] out, int outOff, int rows, int n, float eps) {
        for (int r = 0; r < rows; r++) rmsNorm(x, xOff + r * n, w, out, outOff + r * n, n, eps);
    }

    /**
     * Rotary embedding in the Hugging Face "rotate half" convention on one head vector of
     * 2*half values: for i < half, (x_i, x_{i+half}) becomes
     * (x_i cos_i - x_{i+half} sin_i, x_{i+half} cos_i + x_i sin_i).
     */
    public static void ropeRotateHalf(float[] x, int off, float[] cos, float[] sin, int csOff, int half) {
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

    /** Index of the largest value in x[off, off+n) (the first one on ties); -1 when n is 0. */
    public static int argmax(float[] x, int off, int n) {
        int best = -1;
        float bv = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            float v = x[off + i];
            if (v > bv || best < 0) {
                bv = v;
                best = i;
            }
        }
        return best;
    }

    /** Largest value of x[off, off+n); -infinity when n is 0. */
    public static float max(float[] x, int off, int n) {
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

    /** Below this many multiply-adds a mat-vec runs on the calling thread: a fork costs more. */
    static final long PARALLEL_MIN_MACS = 1L << 16;

    /**
     * Dense mat-vec with a row-major weight: y[yOff+o] = sum_i w[o*cols+i] * x[xOff+i] for o in
     * [0, rows). This is X W^T for a single input row; large ones are split over the thread pool.
     */
    public static void matVec(float[] w, int rows, int cols, float[] x, int xOff, float[] y, int yOff) {
        long macs = (long) rows * cols;
        int threads = Parallel.threads();
        if (macs < PARALLEL_MIN_MACS || threads == 1 || rows < 8) {
            matVecRange(w, cols, x, xOff, y, yOff, 0, rows);
            return;
        }
        int blocks = Math.min(rows / 4, threads * 4);
        int per = (rows + blocks - 1) / blocks;
        int nb = (rows + per - 1) / per;
        Parallel.forRange(nb, b -> matVecRange(w, cols, x, xOff, y, yOff, b * per, Math.min(rows, (b + 1) * per)));
    }

    /** Rows [r0, r1) of a mat-vec; four rows at a time so each x load feeds four products. */
    static void matVecRange(float[] w, int cols, float[] x, int xOff, float[] y, int yOff, int r0, int r1) {
        int r = r0;
        int bound = S.loopBound(cols);
        for (; r + 4 <= r1; r += 4) {
            int w0 = r * cols, w1 = w0 + cols, w2 = w1 + cols, w3 = w2 + cols;
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
            int i = 0;
            for (; i < bound; i += L) {
                FloatVector xv = FloatVector.fromArray(S, x, xOff + i);
                a0 = FloatVector.fromArray(S, w, w0 + i).fma(xv, a0);
                a1 = FloatVector.fromArray(S, w, w1 + i).fma(xv, a1);
                a2 = FloatVector.fromArray(S, w, w2 + i).fma(xv, a2);
                a3 = FloatVector.fromArray(S, w, w3 + i).fma(xv, a3);
            }
            float s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
            float s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
            for (; i < cols; i++) {
                float xv = x[xOff + i];
                s0 += w[w0 + i] * xv;
                s1 += w[w1 + i] * xv;
                s2 += w[w2 + i] * xv;
                s3 += w[w3 + i] * xv;
            }
            y[yOff + r] = s0;
            y[yOff + r + 1] = s1;
            y[yOff + r + 2] = s2;
            y[yOff + r + 3] = s3;
        }
        for (; r < r1; r++) y[yOff + r] = dot(w, r * cols, x, xOff, cols);
    }
}
