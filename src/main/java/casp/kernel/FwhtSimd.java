package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/** Vector API butterflies of {@link Fwht}; loaded only if VectorSupport.enabled(), at the width it chose. */
final class FwhtSimd {
    private FwhtSimd() {}

    private static final VectorSpecies<Float> S = VectorProbe.floatSpecies();
    static final int L = S.length();
    private static final boolean FMA = VectorSupport.FMA;
    /** Lane permutation i -> i ^ h and the sign (+1 where bit h of the lane is clear) per in-vector stage. */
    private static final int[][] SWAP = new int[Integer.numberOfTrailingZeros(L)][L];
    private static final float[][] SIGN = new float[SWAP.length][L];

    static {
        for (int b = 0; b < SWAP.length; b++) {
            int h = 1 << b;
            for (int i = 0; i < L; i++) {
                SWAP[b][i] = i ^ h;
                SIGN[b][i] = (i & h) == 0 ? 1f : -1f;
            }
        }
    }

    /** Normalised transform of x[off, off + n), n a power of two >= L. */
    static void transform(float[] x, int off, int n, float scale) {
        inVector(x, off, n, scale);
        int h = L;
        for (; 4 * h <= n; h *= 4) radix4(x, off, n, h);
        if (h < n) radix2(x, off, n, h);
    }

    /**
     * The permutations of the first four in-vector stages (null beyond the vector's stages), made
     * once: a shuffle built from an array on every call is an object on every call.
     */
    private static final VectorShuffle<Float> P0 = stage(0), P1 = stage(1), P2 = stage(2), P3 = stage(3);

    private static VectorShuffle<Float> stage(int b) {
        return b < SWAP.length ? VectorShuffle.fromArray(S, SWAP[b], 0) : null;
    }

    /** Scales and runs all stages with stride < L inside each vector: v <- perm_h(v) + sign_h * v. */
    private static void inVector(float[] x, int off, int n, float scale) {
        int stages = SWAP.length;
        VectorShuffle<Float> p0 = P0;
        FloatVector s0 = FloatVector.fromArray(S, SIGN[0], 0);
        VectorShuffle<Float> p1 = P1;
        FloatVector s1 = FloatVector.fromArray(S, SIGN[1], 0);
        if (stages == 2) {
            for (int i = off; i < off + n; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, i).mul(scale);
                v = butterfly(v, s0, p0);
                v = butterfly(v, s1, p1);
                v.intoArray(x, i);
            }
            return;
        }
        VectorShuffle<Float> p2 = P2;
        FloatVector s2 = FloatVector.fromArray(S, SIGN[2], 0);
        if (stages == 3) {
            for (int i = off; i < off + n; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, i).mul(scale);
                v = butterfly(v, s0, p0);
                v = butterfly(v, s1, p1);
                v = butterfly(v, s2, p2);
                v.intoArray(x, i);
            }
            return;
        }
        VectorShuffle<Float> p3 = P3;
        FloatVector s3 = FloatVector.fromArray(S, SIGN[3], 0);
        if (stages == 4) {
            for (int i = off; i < off + n; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, i).mul(scale);
                v = butterfly(v, s0, p0);
                v = butterfly(v, s1, p1);
                v = butterfly(v, s2, p2);
                v = butterfly(v, s3, p3);
                v.intoArray(x, i);
            }
            return;
        }
        // Wider vectors than 512 bits: generic loop over the stages.
        for (int i = off; i < off + n; i += L) {
            FloatVector v = FloatVector.fromArray(S, x, i).mul(scale);
            for (int b = 0; b < stages; b++) {
                v = butterfly(v, FloatVector.fromArray(S, SIGN[b], 0), VectorShuffle.fromArray(S, SWAP[b], 0));
            }
            v.intoArray(x, i);
        }
    }

    /** One in-vector stage: lane i gets x[i] + x[i^h] (bit h clear) or x[i^h] - x[i] (set). */
    private static FloatVector butterfly(FloatVector v, FloatVector sign, VectorShuffle<Float> perm) {
        return FMA ? v.fma(sign, v.rearrange(perm)) : v.mul(sign).add(v.rearrange(perm));
    }

    /** Stages h and 2h in one pass (h >= L): blocks of 4h, quadruples (j, j+h, j+2h, j+3h). */
    private static void radix4(float[] x, int off, int n, int h) {
        for (int i = off; i < off + n; i += 4 * h) {
            for (int j = i; j < i + h; j += L) {
                FloatVector a = FloatVector.fromArray(S, x, j);
                FloatVector b = FloatVector.fromArray(S, x, j + h);
                FloatVector c = FloatVector.fromArray(S, x, j + 2 * h);
                FloatVector d = FloatVector.fromArray(S, x, j + 3 * h);
                FloatVector apb = a.add(b), amb = a.sub(b), cpd = c.add(d), cmd = c.sub(d);
                apb.add(cpd).intoArray(x, j);
                amb.add(cmd).intoArray(x, j + h);
                apb.sub(cpd).intoArray(x, j + 2 * h);
                amb.sub(cmd).intoArray(x, j + 3 * h);
            }
        }
    }

    /** One stage of stride h >= L. */
    private static void radix2(float[] x, int off, int n, int h) {
        for (int i = off; i < off + n; i += 2 * h) {
            for (int j = i; j < i + h; j += L) {
                FloatVector a = FloatVector.fromArray(S, x, j);
                FloatVector b = FloatVector.fromArray(S, x, j + h);
                a.add(b).intoArray(x, j);
                a.sub(b).intoArray(x, j + h);
            }
        }
    }
}
