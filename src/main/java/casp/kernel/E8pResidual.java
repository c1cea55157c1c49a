package casp.kernel;

/**
 * The second stage of QuIP#'s residual VQ at 3 and 4 bits (ALGORITHMS.md 7.3): after the E8P12
 * codeword q1 of a target t, the residual is scaled, r = (t - q1) s, rounded to its nearest
 * codeword q2 of a second codebook, and the block becomes q1 + q2 / s. Scales as QuIP#'s reference
 * (quip-sharp codebooks E8P12RVQ3B / E8P12RVQ4B): 2.04 and 3.45.
 * <ul>
 *   <li>{@link #NONE}: 2 bits, E8P12 alone;</li>
 *   <li>{@link #E81B}: 3 bits, a 1-bit-per-weight codebook of 256 points of E8: the origin, the 240
 *       roots (squared norm 2: 112 of the form (+-1, +-1, 0^6), 128 of (+-1/2)^8 with an even number
 *       of minus signs) and 15 of the 16 vectors +-2 e_i (all but -2 e_7), as QuIP#'s E81B;</li>
 *   <li>{@link #E8P}: 4 bits, E8P12 again.</li>
 * </ul>
 */
public enum E8pResidual {
    NONE(2, 0, 0f), E81B(3, 8, 2.04f), E8P(4, 16, 3.45f);

    /** Bits per weight of both stages. */
    public final int bits;
    /** Bits of one second-stage code (0: no second stage). */
    public final int codeBits;
    /** The residual's scale s. */
    public final float scale;

    E8pResidual(int bits, int codeBits, float scale) {
        this.bits = bits;
        this.codeBits = codeBits;
        this.scale = scale;
    }

    /** The stage of a width: 2, 3 or 4 bits. */
    public static E8pResidual forBits(int bits) {
        for (E8pResidual r : values()) if (r.bits == bits) return r;
        throw new IllegalArgumentException("QuIP# has 2, 3 or 4 bits, not " + bits);
    }

    /** E81B's 256 codewords, [256][8] row-major. */
    private static final float[] E81B_TABLE = buildE81b();
    private static final float[] E81B_NORM2 = new float[256];

    static {
        for (int c = 0; c < 256; c++) {
            float s = 0;
            for (int i = 0; i < 8; i++) s += E81B_TABLE[c * 8 + i] * E81B_TABLE[c * 8 + i];
            E81B_NORM2[c] = s;
        }
    }

    private static float[] buildE81b() {
        float[] t = new float[256 * 8];
        int n = 1; // entry 0: the origin
        for (int i = 0; i < 8; i++) { // (+-1, +-1, 0^6)
            for (int j = i + 1; j < 8; j++) {
                for (int s = 0; s < 4; s++) {
                    t[n * 8 + i] = (s & 1) == 0 ? 1 : -1;
                    t[n * 8 + j] = (s & 2) == 0 ? 1 : -1;
                    n++;
                }
            }
        }
        for (int m = 0; m < 256; m++) { // (+-1/2)^8, even number of minus signs
            if (Integer.bitCount(m) % 2 != 0) continue;
            for (int i = 0; i < 8; i++) t[n * 8 + i] = ((m >> i) & 1) != 0 ? -0.5f : 0.5f;
            n++;
        }
        for (int k = 0; k < 15; k++) { // +2 e_0 .. +2 e_7, -2 e_0 .. -2 e_6
            t[n * 8 + k % 8] = k < 8 ? 2 : -2;
            n++;
        }
        if (n != 256) throw new AssertionError("E81B has " + n + " entries");
        return t;
    }

    /** Writes the second-stage codeword {@code code} (unscaled) to out[off, off + 8). */
    public void decode(int code, float[] out, int off) {
        switch (this) {
            case E81B -> System.arraycopy(E81B_TABLE, code * 8, out, off, 8);
            case E8P -> E8p.decode(code, out, off);
            default -> throw new IllegalStateException("no second stage");
        }
    }

    /** The code of the second-stage codeword nearest to r[off, off + 8) (exact), written to q when not null. */
    public int encode(float[] r, int off, E8p.Scratch s, float[] q, int qOff) {
        switch (this) {
            case E8P:
                return E8p.encode(r, off, s, q, qOff);
            case E81B: {
                float best = Float.POSITIVE_INFINITY;
                int bestC = 0;
                for (int c = 0; c < 256; c++) { // |c|^2 - 2 c.r, brute force: 256 x 8
                    float d = E81B_NORM2[c];
                    for (int i = 0; i < 8; i++) d -= 2 * E81B_TABLE[c * 8 + i] * r[off + i];
                    if (d < best) {
                        best = d;
                        bestC = c;
                    }
                }
                if (q != null) System.arraycopy(E81B_TABLE, bestC * 8, q, qOff, 8);
                return bestC;
            }
            default:
                throw new IllegalStateException("no second stage");
        }
    }

    /** All second-stage codewords, [2^codeBits][8] (shared for E8P: never write to it). */
    float[] table() {
        return this == E81B ? E81B_TABLE : E8p.table();
    }
}
