package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API path of {@link E8p#encode}'s pattern scan; loaded only when VectorSupport.enabled().
 * The lanes hold consecutive patterns; each lane keeps its first minimum, then the lanes are
 * reduced to the least distance and, among equal ones, the least pattern index. The arithmetic is
 * the scalar path's, operation for operation (mul then add, no fma), so both give the same codes.
 */
final class E8pSimd {
    private E8pSimd() {}

    static final VectorSpecies<Float> F = VectorProbe.floatSpecies();
    static final int L = F.length();
    /** Pattern indices as floats (exact below 2^24). */
    private static final float[] INDEX = new float[E8p.PATTERNS];

    static {
        for (int p = 0; p < E8p.PATTERNS; p++) INDEX[p] = p;
    }

    /**
     * The pattern of least score NORM2 - 2 dot + 4 bad min for |z| (see E8p), written to best[0]
     * (score) and returned.
     */
    static int bestPattern(float[] col, float[] norm2, float[] bad, float[] absZ, float[] best) {
        final int n = E8p.PATTERNS;
        FloatVector bestD = FloatVector.broadcast(F, Float.POSITIVE_INFINITY);
        FloatVector bestP = FloatVector.zero(F);
        float z0 = absZ[0], z1 = absZ[1], z2 = absZ[2], z3 = absZ[3], z4 = absZ[4], z5 = absZ[5], z6 = absZ[6], z7 = absZ[7];
        for (int p = 0; p < n; p += L) {
            FloatVector t = FloatVector.fromArray(F, col, p).mul(z0);
            FloatVector dot = t, mn = t;
            t = FloatVector.fromArray(F, col, n + p).mul(z1); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 2 * n + p).mul(z2); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 3 * n + p).mul(z3); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 4 * n + p).mul(z4); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 5 * n + p).mul(z5); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 6 * n + p).mul(z6); dot = dot.add(t); mn = mn.min(t);
            t = FloatVector.fromArray(F, col, 7 * n + p).mul(z7); dot = dot.add(t); mn = mn.min(t);
            FloatVector d = FloatVector.fromArray(F, norm2, p).sub(dot.mul(2f))
                    .add(FloatVector.fromArray(F, bad, p).mul(4f).mul(mn));
            VectorMask<Float> better = d.lt(bestD);
            bestD = bestD.blend(d, better);
            bestP = bestP.blend(FloatVector.fromArray(F, INDEX, p), better);
        }
        float m = bestD.reduceLanes(VectorOperators.MIN);
        float idx = bestP.blend(FloatVector.broadcast(F, Float.POSITIVE_INFINITY), bestD.compare(VectorOperators.NE, m))
                .reduceLanes(VectorOperators.MIN);
        best[0] = m;
        return (int) idx;
    }

    /** Eight lanes: one codeword per vector (null when the machine's vectors are narrower than 256 bits). */
    static final VectorSpecies<Float> F8 = VectorSupport.bits() >= 256 ? VectorSpecies.of(float.class, VectorShape.S_256_BIT) : null;

    /**
     * y[yOff + r] = sum_j table[codes[r per + j]] . x[8 j, 8 j + 8) for rows r0 .. r1 (the codewords
     * from the full table, 8 floats each).
     */
    static void decodeDot(float[] table, short[] codes, int per, float[] x, int r0, int r1, float[] y, int yOff) {
        for (int r = r0; r < r1; r++) {
            FloatVector acc = FloatVector.zero(F8);
            int c = r * per;
            for (int j = 0; j < per; j++) {
                FloatVector w = FloatVector.fromArray(F8, table, (codes[c + j] & 0xffff) * E8p.DIM);
                acc = w.fma(FloatVector.fromArray(F8, x, j * E8p.DIM), acc);
            }
            y[yOff + r] = acc.reduceLanes(VectorOperators.ADD);
        }
    }
}
