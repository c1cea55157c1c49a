package casp.kernel;

/**
 * Integer codes in the AutoGPTQ "gptq" v1 tensor layout (ALGORITHMS.md section 10), for a linear
 * layer with W [out, in]:
 * <ul>
 *   <li>qweight int32 [in * bits / 32, out]: for each output column, the codes of inputs 0, 1, 2...
 *       form a little-endian bit stream (code c occupies bits [c * bits, (c + 1) * bits) of the
 *       concatenated words, word w holding stream bits [32 w, 32 w + 32), bit 0 the least
 *       significant). For 2, 4 and 8 bits a word holds 32 / bits whole codes; for 3 bits 32 codes
 *       span 3 words and codes 10 and 21 straddle a word boundary, exactly as AutoGPTQ's pack().
 *   <li>qzeros int32 [groups, out * bits / 32]: the same bit stream along the output dimension,
 *       storing zero - 1 as a subtraction on whole words (see {@link #encodeZeros}; zero points
 *       0 .. 2^bits - 1).
 *   <li>scales fp16 [groups, out] (see {@link Fp16}); g_idx int32 [in], group of each input.
 * </ul>
 * W[r, c] = scales[g_idx[c], r] * (q[c, r] - zero[g_idx[c], r]), zero decoded by {@link #decodeZeros}.
 *
 * <p>When in * bits (or out * bits) is not a multiple of 32, the stream is padded with zero bits
 * to whole words; real models have in and out multiples of 32 and then the shapes are exact.
 * Codes are passed in W's layout, [out, in] row-major, because that is what a quantizer produces.
 */
public final class GptqPacking {
    private GptqPacking() {}

    /** The four tensors of one GPTQ v1 linear layer, with its shape and width. */
    public static final class Tensors {
        public final int in, out, bits;
        /** int32 [words(in, bits), out]. */
        public final int[] qweight;
        /** int32 [groups, words(out, bits)], v1 (zero - 1 on whole words). */
        public final int[] qzeros;
        /** fp16 bit patterns [groups, out]. */
        public final short[] scales;
        /** int32 [in]: group of each input. */
        public final int[] gIdx;

        public Tensors(int in, int out, int bits, int[] qweight, int[] qzeros, short[] scales, int[] gIdx) {
            this.in = in;
            this.out = out;
            this.bits = bits;
            this.qweight = qweight;
            this.qzeros = qzeros;
            this.scales = scales;
            this.gIdx = gIdx;
        }

        /** Number of groups (rows of qzeros and scales). */
        public int groups() {
            return out == 0 ? 0 : scales.length / out;
        }
    }

    /** Checks that bits is one of the supported widths 2, 3, 4, 8. */
    public static void checkBits(int bits) {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, got " + bits);
        }
    }

    /** Number of int32 words holding count codes of the given width (rounded up). */
    public static int words(int count, int bits) {
        return (int) (((long) count * bits + 31) / 32);
    }

    /** Packs codes [out, in] (values in [0, 2^bits)) into qweight [words(in, bits), out]. */
    public static int[] packQweight(int[] codes, int in, int out, int bits) {
        checkBits(bits);
        checkLength(codes, (long) in * out, "codes");
        int rows = words(in, bits);
        int[] q = new int[rows * out];
        int maxq = (1 << bits) - 1;
        for (int r = 0; r < out; r++) {
            for (int c = 0; c < in; c++) {
                int v = codes[r * in + c];
                if (v < 0 || v > maxq) throw new IllegalArgumentException("code " + v + " at [" + r + ", " + c + "] does not fit in " + bits + " bits");
                long bit = (long) c * bits;
                int w = (int) (bit >>> 5), sh = (int) (bit & 31);
                q[w * out + r] |= v << sh;
                if (sh + bits > 32) q[(w + 1) * out + r] |= v >>> (32 - sh);
            }
        }
        return q;
    }

    /** Inverse of {@link #packQweight}: codes [out, in]. */
    public static int[] unpackQweight(int[] qweight, int in, int out, int bits) {
        checkBits(bits);
        checkLength(qweight, (long) words(in, bits) * out, "qweight");
        int[] codes = new int[in * out];
        for (int r = 0; r < out; r++) {
            for (int c = 0; c < in; c++) codes[r * in + c] = extract(qweight, c, bits, out, r);
        }
        return codes;
    }

    /**
     * Packs integer zero points zeros [groups, out], each in [0, 2^bits), into v1 qzeros
     * [groups, words(out, bits)] (int32 words): see {@link #encodeZeros}.
     */
    public static int[] packQzeros(int[] zeros, int groups, int out, int bits) {
        return toInts(encodeZeros(zeros, groups, out, bits, 32, true));
    }

    /** Inverse of {@link #packQzeros}: zero points [groups, out] of v1 int32 qzeros, see {@link #decodeZeros}. */
    public static int[] unpackQzeros(int[] qzeros, int groups, int out, int bits) {
        checkLength(qzeros, (long) groups * words(out, bits), "qzeros");
        return decodeZeros(toLongs(qzeros, groups * words(out, bits)), groups, out, bits, 32, true);
    }

    /**
     * Packs zero points [groups, out] (each in [0, 2^bits)) into qzeros words of packBits bits
     * (8, 16, 32 or 64; 3 bits: 32 only), [groups, ceil(out * bits / packBits)], each word's bits
     * in the low packBits bits of a long. v2 stores the zero points as they are. v1 stores zero - 1
     * the way GPTQModel writes it: the packed word minus a constant with a one in every field, a
     * subtraction on the whole word, so a zero point 0 borrows from the field above it (at 3 bits,
     * where fields straddle words, each field is decremented modulo 8 on its own, as GPTQModel
     * does). For zero points in [1, 2^bits) this equals AutoGPTQ's field-by-field zero - 1, so
     * both tools read such words alike.
     */
    public static long[] encodeZeros(int[] zeros, int groups, int out, int bits, int packBits, boolean v1) {
        checkBits(bits);
        checkPackBits(bits, packBits);
        checkLength(zeros, (long) groups * out, "zeros");
        int maxq = (1 << bits) - 1;
        int wpr = wordsOf(out, bits, packBits);
        long[] q = new long[groups * wpr];
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < out; r++) {
                int z = zeros[g * out + r];
                if (z < 0 || z > maxq)
                    throw new IllegalArgumentException("zero point " + z + " at [" + g + ", " + r + "] is outside [0, " + maxq + "]");
                if (v1 && bits == 3) z = (z - 1) & maxq;
                long bit = (long) r * bits;
                int w = (int) (bit / packBits), sh = (int) (bit % packBits);
                q[g * wpr + w] |= (long) z << sh;
                if (sh + bits > packBits) q[g * wpr + w + 1] |= (long) z >>> (packBits - sh);
            }
        }
        long mask = packMask(packBits);
        for (int i = 0; i < q.length; i++) {
            if (v1 && bits != 3) q[i] -= fieldOnes(bits, packBits);
            q[i] &= mask;
        }
        return q;
    }

    /**
     * Zero points [groups, out] of qzeros words (inverse of {@link #encodeZeros}). v1 adds the
     * constant with a one in every field to the whole word before splitting it (GPTQModel's v1 to v2
     * conversion), which undoes a borrow exactly; at 3 bits each field is incremented modulo 8.
     */
    public static int[] decodeZeros(long[] words, int groups, int out, int bits, int packBits, boolean v1) {
        checkBits(bits);
        checkPackBits(bits, packBits);
        int wpr = wordsOf(out, bits, packBits);
        checkLength(words.length, (long) groups * wpr, "qzeros");
        int maxq = (1 << bits) - 1;
        long mask = packMask(packBits);
        int[] zeros = new int[groups * out];
        long[] row = new long[wpr];
        for (int g = 0; g < groups; g++) {
            for (int w = 0; w < wpr; w++) {
                long v = words[g * wpr + w];
                if (v1 && bits != 3) v += fieldOnes(bits, packBits);
                row[w] = v & mask;
            }
            for (int r = 0; r < out; r++) {
                long bit = (long) r * bits;
                int w = (int) (bit / packBits), sh = (int) (bit % packBits);
                long v = row[w] >>> sh;
                if (sh + bits > packBits) v |= row[w + 1] << (packBits - sh);
                int z = (int) (v & maxq);
                zeros[g * out + r] = v1 && bits == 3 ? (z + 1) & maxq : z;
            }
        }
        return zeros;
    }

    /**
     * qweight words of packBits bits ([rows, out], each in the low bits of a long) as the int32
     * qweight [words(in, bits), out] of the same code streams: the bit stream of each output column
     * does not depend on the word size, only its cutting into words does.
     */
    public static int[] qweightToInt32(long[] words, int in, int out, int bits, int packBits) {
        checkBits(bits);
        checkPackBits(bits, packBits);
        int rows = wordsOf(in, bits, packBits);
        checkLength(words.length, (long) rows * out, "qweight");
        int rows32 = words(in, bits);
        int[] q = new int[rows32 * out];
        long mask = packMask(packBits);
        for (int w = 0; w < rows; w++) {
            long bit = (long) w * packBits;
            for (int r = 0; r < out; r++) {
                long v = words[w * out + r] & mask;
                for (int part = 0; part < packBits; part += 32) { // 64-bit words: two int32 words
                    long b = bit + part;
                    int w32 = (int) (b >>> 5), sh = (int) (b & 31);
                    if (w32 < rows32) q[w32 * out + r] |= (int) (v >>> part) << sh;
                }
            }
        }
        return q;
    }

    /** Number of words of packBits bits holding count codes of the given width (rounded up). */
    public static int wordsOf(int count, int bits, int packBits) {
        return (int) (((long) count * bits + packBits - 1) / packBits);
    }

    /** The word of packBits bits with a one at the bottom of every bits-wide field (2, 4, 8 bits). */
    private static long fieldOnes(int bits, int packBits) {
        long ones = 0;
        for (int sh = 0; sh < packBits; sh += bits) ones |= 1L << sh;
        return ones;
    }

    private static long packMask(int packBits) {
        return packBits == 64 ? -1L : (1L << packBits) - 1;
    }

    /** Checks a pack word width: 8, 16, 32 or 64 bits; 3-bit codes straddle words and come in 32-bit words only. */
    public static void checkPackBits(int bits, int packBits) {
        if (packBits != 8 && packBits != 16 && packBits != 32 && packBits != 64)
            throw new IllegalArgumentException("pack words of " + packBits + " bits: supported are 8, 16, 32, 64");
        if (bits == 3 && packBits != 32)
            throw new IllegalArgumentException("3-bit codes are packed in 32-bit words only, got " + packBits);
    }

    private static int[] toInts(long[] v) {
        int[] a = new int[v.length];
        for (int i = 0; i < v.length; i++) a[i] = (int) v[i];
        return a;
    }

    private static long[] toLongs(int[] v, int n) {
        long[] a = new long[n];
        for (int i = 0; i < n; i++) a[i] = v[i] & 0xffffffffL;
        return a;
    }

    /** The g_idx of plain (no act-order) grouping: input c belongs to group c / groupSize. */
    public static int[] sequentialGroupIndex(int in, int groupSize) {
        if (groupSize <= 0) throw new IllegalArgumentException("group size must be positive, got " + groupSize);
        int[] g = new int[in];
        for (int c = 0; c < in; c++) g[c] = c / groupSize;
        return g;
    }

    /** Code of input c, output r from qweight [*, out] (stride out between words of one column). */
    static int extract(int[] qweight, int c, int bits, int out, int r) {
        long bit = (long) c * bits;
        int w = (int) (bit >>> 5), sh = (int) (bit & 31);
        int v = qweight[w * out + r] >>> sh;
        if (sh + bits > 32) v |= qweight[(w + 1) * out + r] << (32 - sh);
        return v & ((1 << bits) - 1);
    }

    private static void checkLength(int[] a, long need, String what) {
        checkLength(a.length, need, what);
    }

    private static void checkLength(int length, long need, String what) {
        if (length < need) throw new IllegalArgumentException(what + " has " + length + " entries, need " + need);
    }
}
