package casp.kernel;

import jdk.incubator.vector.ByteVector;
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
        // Every call is made on a vector restated through EXACT (a load, a running value): see EXACT.
        FloatVector z0 = FloatVector.broadcast(F, absZ[0]), z1 = FloatVector.broadcast(F, absZ[1]);
        FloatVector z2 = FloatVector.broadcast(F, absZ[2]), z3 = FloatVector.broadcast(F, absZ[3]);
        FloatVector z4 = FloatVector.broadcast(F, absZ[4]), z5 = FloatVector.broadcast(F, absZ[5]);
        FloatVector z6 = FloatVector.broadcast(F, absZ[6]), z7 = FloatVector.broadcast(F, absZ[7]);
        for (int p = 0; p < n; p += L) {
            FloatVector t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, p).mul(z0));
            FloatVector dot = t, mn = t;
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, n + p).mul(z1));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 2 * n + p).mul(z2));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 3 * n + p).mul(z3));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 4 * n + p).mul(z4));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 5 * n + p).mul(z5));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 6 * n + p).mul(z6));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            t = (FloatVector) EXACT.cast(FloatVector.fromArray(F, col, 7 * n + p).mul(z7));
            dot = (FloatVector) EXACT.cast(dot.add(t));
            mn = (FloatVector) EXACT.cast(mn.min(t));
            FloatVector norm = (FloatVector) EXACT.cast(FloatVector.fromArray(F, norm2, p));
            FloatVector flip = (FloatVector) EXACT.cast(FloatVector.fromArray(F, bad, p));
            FloatVector d = (FloatVector) EXACT.cast(norm.sub(dot.mul(2f)).add(flip.mul(4f).mul(mn)));
            VectorMask<Float> better = d.lt(bestD);
            bestD = (FloatVector) EXACT.cast(((FloatVector) EXACT.cast(bestD)).blend(d, better));
            bestP = (FloatVector) EXACT.cast(((FloatVector) EXACT.cast(bestP)).blend(FloatVector.fromArray(F, INDEX, p), better));
        }
        bestD = ((FloatVector) EXACT.cast(bestD));
        bestP = ((FloatVector) EXACT.cast(bestP));
        float m = bestD.reduceLanes(VectorOperators.MIN);
        float idx = ((FloatVector) EXACT.cast(bestP.blend(FloatVector.broadcast(F, Float.POSITIVE_INFINITY), bestD.compare(VectorOperators.NE, m))))
                .reduceLanes(VectorOperators.MIN);
        best[0] = m;
        return (int) idx;
    }

    /**
     * The class of F's vectors. C2 (JDK 17) knows the class of a loaded vector, an operation's
     * result or a value carried through a loop only from the type profile of the Vector API's
     * shared methods, and decodeDot's 256-bit vectors put a second class in those profiles: a call
     * on such a vector then runs the API's boxing fallback (VectorBoxingTest: 53 KB allocated per
     * encode). Class.cast with this constant is an intrinsic that restates the exact class, and C2
     * inlines it even past its node cutoff, where a helper method would not be.
     */
    private static final Class<?> EXACT = F.vectorType();

    /** Eight lanes: one codeword per vector (null when the machine's vectors are narrower than 256 bits). */
    static final VectorSpecies<Float> F8 = VectorSupport.bits() >= 256 ? VectorSpecies.of(float.class, VectorShape.S_256_BIT) : null;

    /**
     * y[yOff + r] = sum_j table[codes[r per + j]] . x[8 j, 8 j + 8) for rows r0 .. r1, from a float
     * table of 8-value codewords (the second stage's; the E8P codebook goes through decodeDotQuarters).
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

    /** Eight bytes: one codeword in quarters. */
    private static final VectorSpecies<Byte> B8 = F8 == null ? null : VectorSpecies.of(byte.class, VectorShape.S_64_BIT);

    /**
     * As {@link #decodeDot} from the codebook in quarters ({@link E8p#tableQuarters}: 4 x codeword
     * as bytes, converted to floats in the kernel; the sum times 1/4 is exact), four codes per step
     * into four sums. The lookups set the speed: the float codebook (2 MiB) fills a core's L2 cache
     * and misses it, the byte one (512 KiB) stays there; 0.92 -> 0.54 ns per code over the seven
     * linears of a 7B layer on 2 threads (the extra sums alone changed nothing). Bytes rather than
     * bf16 (1 MiB, 0.53-0.67 ns): widening bf16 takes 256-bit int vectors, a second int shape in the
     * Vector API's type profiles, after which C2 boxed the quantized mat-vec's 512-bit int vectors
     * (VectorBoxingTest: 1.3 MB per round). The body is written out: a helper that returns the
     * converted codeword would be a call on a vector the caller does not see made.
     */
    static void decodeDotQuarters(byte[] table, short[] codes, int per, float[] x, int r0, int r1, float[] y, int yOff) {
        final int d = E8p.DIM;
        for (int r = r0; r < r1; r++) {
            FloatVector a0 = FloatVector.zero(F8), a1 = a0, a2 = a0, a3 = a0;
            int c = r * per, j = 0;
            for (; j + 4 <= per; j += 4) {
                FloatVector w0 = (FloatVector) ByteVector.fromArray(B8, table, (codes[c + j] & 0xffff) * d).convertShape(VectorOperators.B2F, F8, 0);
                FloatVector w1 = (FloatVector) ByteVector.fromArray(B8, table, (codes[c + j + 1] & 0xffff) * d).convertShape(VectorOperators.B2F, F8, 0);
                FloatVector w2 = (FloatVector) ByteVector.fromArray(B8, table, (codes[c + j + 2] & 0xffff) * d).convertShape(VectorOperators.B2F, F8, 0);
                FloatVector w3 = (FloatVector) ByteVector.fromArray(B8, table, (codes[c + j + 3] & 0xffff) * d).convertShape(VectorOperators.B2F, F8, 0);
                a0 = w0.fma(FloatVector.fromArray(F8, x, j * d), a0);
                a1 = w1.fma(FloatVector.fromArray(F8, x, (j + 1) * d), a1);
                a2 = w2.fma(FloatVector.fromArray(F8, x, (j + 2) * d), a2);
                a3 = w3.fma(FloatVector.fromArray(F8, x, (j + 3) * d), a3);
            }
            for (; j < per; j++) {
                FloatVector w0 = (FloatVector) ByteVector.fromArray(B8, table, (codes[c + j] & 0xffff) * d).convertShape(VectorOperators.B2F, F8, 0);
                a0 = w0.fma(FloatVector.fromArray(F8, x, j * d), a0);
            }
            y[yOff + r] = 0.25f * a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
        }
    }
}
