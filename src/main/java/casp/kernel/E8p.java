package casp.kernel;

import java.util.Arrays;

/**
 * The E8P12 codebook of QuIP# (ALGORITHMS.md section 7.2): 2^16 eight-dimensional codewords,
 * 2 bits per weight, {s * a + t : a in A, s in {+1,-1}^8 with sum(s * a) even, t = +-1/4}.
 *
 * <p>A holds 256 vectors of non-negative half-integers: the 227 distinct absolute-value patterns
 * of the D8-hat points ((Z + 1/2)^8 with even coordinate sum) of squared norm at most 10, in
 * lexicographic order, then 29 patterns of squared norm 12 (five 3/2 and three 1/2): QuIP#'s list
 * (quip-sharp lib/codebook/latticee8_padded12.py, in its current form; an older version held
 * (1,3,3,3,1,1,3,3)/2 twice, which made two codewords equal), so all 65536 codewords are distinct.
 *
 * <p>Every entry of a is odd/2, so flipping one sign changes sum(s * a) by an odd number: exactly
 * half of the sign vectors are admissible, and the sign of coordinate 7 follows from the others.
 * A code is 16 bits: bits 0-7 the index into A, bits 8-14 the signs of coordinates 0..6 (bit set =
 * negative), bit 15 the shift (0: +1/4, 1: -1/4).
 *
 * <p>{@link #encode} finds the exact nearest codeword: for each shift t and each a, the best
 * signs for z = y - t are those of z; if they give an odd sum, the best admissible signs flip the
 * one coordinate with the least a_i |z_i| (flipping costs 4 a_i |z_i|, and any single flip fixes
 * the parity). So |z - s a|^2 = |z|^2 - 2 sum a_i |z_i| + |a|^2 (+ 4 min a_i |z_i|) is scored for
 * 2 x 256 candidates instead of 65536.
 */
public final class E8p {
    private E8p() {}

    /** Dimension of a codeword. */
    public static final int DIM = 8;
    /** Number of codewords (16-bit codes). */
    public static final int CODES = 1 << 16;
    /** Size of the absolute-value table A. */
    public static final int PATTERNS = 256;

    /**
     * Positions (0-based) of the three 1/2 entries of the 29 norm-12 patterns; the other five are
     * 3/2. QuIP#'s order.
     */
    private static final int[][] NORM12_HALVES = {
            {1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2},
            {3, 6, 7}, {3, 5, 7}, {3, 4, 7}, {3, 5, 6}, {3, 4, 6}, {3, 4, 5},
            {2, 6, 7}, {2, 5, 7}, {2, 4, 7}, {2, 5, 6}, {2, 4, 6}, {2, 4, 5},
            {1, 6, 7}, {1, 5, 7}, {1, 4, 7}, {1, 5, 6}, {1, 4, 6},
            {0, 4, 5}, {0, 6, 7}, {0, 5, 7}, {0, 4, 7}, {0, 5, 6}, {0, 4, 6}, {0, 1, 4},
            {2, 3, 7},
    };

    /** A in doubled units (odd integers 1, 3, 5), [PATTERNS][DIM] row-major. */
    private static final int[] ABS2 = buildAbs();
    /** Column-major copy of A as floats: COL[i * PATTERNS + p] = a_p[i]. */
    private static final float[] COL = new float[DIM * PATTERNS];
    /** |a_p|^2. */
    private static final float[] NORM2 = new float[PATTERNS];
    /** (sum_i a_p[i]) mod 2 as 0 or 1: with all signs positive, whether sum(s * a) is odd. */
    private static final float[] PARITY = new float[PATTERNS];
    /** 1 - PARITY: whether the sum is odd when one sign is negative. */
    private static final float[] NOT_PARITY = new float[PATTERNS];

    static {
        for (int p = 0; p < PATTERNS; p++) {
            int sum = 0, n2 = 0;
            for (int i = 0; i < DIM; i++) {
                int b = ABS2[p * DIM + i];
                COL[i * PATTERNS + p] = b * 0.5f;
                sum += b;
                n2 += b * b;
            }
            NORM2[p] = n2 * 0.25f;
            PARITY[p] = (sum / 2) & 1;
            NOT_PARITY[p] = 1 - PARITY[p];
        }
    }

    private static int[] buildAbs() {
        int[] out = new int[PATTERNS * DIM];
        int n = 0;
        int[] b = new int[DIM];
        // All vectors of odd entries 1, 3, 5 (doubled units) in lexicographic order, squared norm <= 10
        // (sum of b^2 <= 40). Every such pattern is the |x| of a D8-hat point: a sign fixes the parity.
        for (int idx = 0; idx < 6561; idx++) { // 3^8
            int v = idx, n2 = 0;
            for (int i = DIM - 1; i >= 0; i--) {
                b[i] = 2 * (v % 3) + 1;
                v /= 3;
                n2 += b[i] * b[i];
            }
            if (n2 <= 40) {
                System.arraycopy(b, 0, out, n * DIM, DIM);
                n++;
            }
        }
        if (n != 227) throw new AssertionError("expected 227 D8-hat patterns of squared norm <= 10, found " + n);
        for (int[] halves : NORM12_HALVES) {
            Arrays.fill(out, n * DIM, (n + 1) * DIM, 3);
            for (int h : halves) out[n * DIM + h] = 1;
            n++;
        }
        return out;
    }

    /** Entry i of pattern p of A (a half-integer: 0.5, 1.5 or 2.5). */
    public static float pattern(int p, int i) {
        return ABS2[p * DIM + i] * 0.5f;
    }

    /** Writes codeword {@code code} (16 bits) to out[off, off + 8). */
    public static void decode(int code, float[] out, int off) {
        int p = code & 0xff, signs = (code >>> 8) & 0x7f;
        float shift = (code & 0x8000) != 0 ? -0.25f : 0.25f;
        int partial = 0; // sum of s_i b_i over coordinates 0..6, doubled units
        for (int i = 0; i < DIM - 1; i++) {
            int b = ABS2[p * DIM + i];
            int sb = ((signs >>> i) & 1) != 0 ? -b : b;
            partial += sb;
            out[off + i] = sb * 0.5f + shift;
        }
        int b7 = ABS2[p * DIM + 7];
        // sum(s a) even <=> sum(s b) divisible by 4
        int sb7 = Math.floorMod(partial + b7, 4) == 0 ? b7 : -b7;
        out[off + 7] = sb7 * 0.5f + shift;
    }

    /** The codebook built once, shared (read-only) by the decoding kernels. */
    private static final class Table {
        static final float[] ALL = codebook();
    }

    /** All codewords, [CODES][DIM] row-major, shared: never write to it. */
    static float[] table() {
        return Table.ALL;
    }

    /** The codebook in quarters, built once on first use. */
    private static final class QuarterTable {
        static final byte[] ALL = quarters(Table.ALL);

        private static byte[] quarters(float[] all) {
            byte[] out = new byte[all.length];
            for (int i = 0; i < all.length; i++) {
                float q = all[i] * 4;
                if (q != (byte) q) throw new AssertionError("codeword value " + all[i] + " is not a small multiple of 1/4");
                out[i] = (byte) q;
            }
            return out;
        }
    }

    /**
     * All codewords times 4, as bytes, [CODES][DIM] row-major, shared: never write to it. Exact:
     * every value is (odd integer)/2 +- 1/4, a multiple of 1/4 of magnitude at most 2.75, so four
     * times it is an integer in [-11, 11]. A quarter of the size of {@link #table()} (512 KiB against
     * 2 MiB): a decode's random lookups then stay in a core's L2 cache.
     */
    static byte[] tableQuarters() {
        return QuarterTable.ALL;
    }

    /** All 65536 codewords, [CODES][DIM] row-major (2 MiB; for brute-force checks and dequantization). */
    public static float[] codebook() {
        float[] all = new float[CODES * DIM];
        for (int c = 0; c < CODES; c++) decode(c, all, c * DIM);
        return all;
    }

    /**
     * Scratch space for {@link #encode}: one per thread. Holds the per-pattern partial scores so
     * that the inner loops run over the 256 patterns (contiguous, vectorised by the JIT).
     */
    public static final class Scratch {
        final float[] dot = new float[PATTERNS], min = new float[PATTERNS];
        final float[] z = new float[DIM], absZ = new float[DIM], best = new float[1];
    }

    /**
     * The code of the codeword nearest to y[off, off + 8) in Euclidean distance (exact; on a tie
     * the +1/4 shift, then the lower pattern index wins). With q not null, the codeword is written
     * to q[qOff, qOff + 8).
     */
    public static int encode(float[] y, int off, Scratch s, float[] q, int qOff) {
        float best = Float.POSITIVE_INFINITY;
        int bestCode = 0;
        for (int sh = 0; sh < 2; sh++) {
            float t = sh == 0 ? 0.25f : -0.25f;
            float zn = 0;
            int neg = 0;
            for (int i = 0; i < DIM; i++) {
                float z = y[off + i] - t;
                s.z[i] = z;
                s.absZ[i] = Math.abs(z);
                zn += z * z;
                if (z < 0) neg++;
            }
            // odd sum when PARITY[p] != neg mod 2: then the cheapest flip is added
            float[] bad = (neg & 1) == 0 ? PARITY : NOT_PARITY;
            int bestP;
            float bestHere;
            if (SIMD) {
                bestP = E8pSimd.bestPattern(COL, NORM2, bad, s.absZ, s.best);
                bestHere = s.best[0];
            } else {
                bestP = bestPatternScalar(s, bad);
                bestHere = s.best[0];
            }
            float dist = zn + bestHere;
            if (dist < best) {
                best = dist;
                bestCode = codeFor(bestP, s.z, s.absZ, sh);
            }
        }
        if (q != null) decode(bestCode, q, qOff);
        return bestCode;
    }

    /**
     * One 8-column block of BlockLDLQ, for {@code rows} rows: row r's target
     * t[tOff + r ldt, + 8) is coded (codes[cOff + r ldc]; with a residual stage also
     * codes2[cOff + r ldc]) and the error against the weight, w[wOff + r ldw + i] - q_i for the
     * block's value q, written to err[eOff + r lde + i].
     */
    public static void quantizeRows(float[] t, int tOff, int ldt, float[] w, int wOff, int ldw, int rows,
                                    short[] codes, int cOff, int ldc, float[] err, int eOff, int lde, Scratch s,
                                    E8pResidual residual, short[] codes2) {
        float[] q = new float[DIM], res = new float[DIM], q2 = new float[DIM];
        for (int r = 0; r < rows; r++) {
            int tr = tOff + r * ldt;
            codes[cOff + r * ldc] = (short) encode(t, tr, s, q, 0);
            if (residual != E8pResidual.NONE) {
                float rs = residual.scale;
                for (int i = 0; i < DIM; i++) res[i] = (t[tr + i] - q[i]) * rs;
                codes2[cOff + r * ldc] = (short) residual.encode(res, 0, s, q2, 0);
                for (int i = 0; i < DIM; i++) q[i] += q2[i] / rs;
            }
            int wr = wOff + r * ldw, er = eOff + r * lde;
            for (int i = 0; i < DIM; i++) err[er + i] = w[wr + i] - q[i];
        }
    }

    /** The scalar twin of E8pSimd.bestPattern: same arithmetic, same tie rule (least index). */
    static int bestPatternScalar(Scratch s, float[] bad) {
        scorePatterns(s);
        float bestHere = Float.POSITIVE_INFINITY;
        int bestP = 0;
        for (int p = 0; p < PATTERNS; p++) {
            float d = NORM2[p] - s.dot[p] * 2f + bad[p] * 4f * s.min[p];
            if (d < bestHere) {
                bestHere = d;
                bestP = p;
            }
        }
        s.best[0] = bestHere;
        return bestP;
    }

    /** Whether {@link #encode} scans the patterns with the Vector API (else {@link #bestPatternScalar}). */
    static final boolean SIMD = VectorSupport.enabled() && PATTERNS % (VectorSupport.bits() / 32) == 0;

    /** dot[p] = sum_i a_p[i] |z_i|, min[p] = min_i a_p[i] |z_i|. */
    private static void scorePatterns(Scratch s) {
        float[] dot = s.dot, min = s.min;
        float z0 = s.absZ[0];
        for (int p = 0; p < PATTERNS; p++) {
            float v = COL[p] * z0;
            dot[p] = v;
            min[p] = v;
        }
        for (int i = 1; i < DIM; i++) {
            float zi = s.absZ[i];
            int base = i * PATTERNS;
            for (int p = 0; p < PATTERNS; p++) {
                float v = COL[base + p] * zi;
                dot[p] += v;
                min[p] = Math.min(min[p], v);
            }
        }
    }

    /** The code of pattern p with the signs of z, the cheapest coordinate flipped if the parity is odd. */
    private static int codeFor(int p, float[] z, float[] absZ, int shiftBit) {
        int signs = 0, sum = 0, flip = 0;
        float least = Float.POSITIVE_INFINITY;
        for (int i = 0; i < DIM; i++) {
            int b = ABS2[p * DIM + i];
            boolean neg = z[i] < 0;
            if (neg) signs |= 1 << i;
            sum += neg ? -b : b;
            float c = b * absZ[i];
            if (c < least) {
                least = c;
                flip = i;
            }
        }
        if (Math.floorMod(sum, 4) != 0) signs ^= 1 << flip;
        return p | (signs & 0x7f) << 8 | shiftBit << 15;
    }
}
