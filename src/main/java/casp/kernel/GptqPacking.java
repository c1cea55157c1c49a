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
 *       storing zero - 1 (so v1 can hold zero points 1 .. 2^bits, not 0).
 *   <li>scales fp16 [groups, out] (see {@link Fp16}); g_idx int32 [in], group of each input.
 * </ul>
 * W[r, c] = scales[g_idx[c], r] * (q[c, r] - (qzeros[g_idx[c], r] + 1)).
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
        /** int32 [groups, words(out, bits)], zero - 1. */
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
     * Packs integer zero points zeros [groups, out] into qzeros [groups, words(out, bits)], storing
     * zero - 1 as v1 does. Zero points must lie in [1, 2^bits]; v1 cannot represent 0.
     */
    public static int[] packQzeros(int[] zeros, int groups, int out, int bits) {
        checkBits(bits);
        checkLength(zeros, (long) groups * out, "zeros");
        int wpr = words(out, bits);
        int[] q = new int[groups * wpr];
        int maxq = (1 << bits) - 1;
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < out; r++) {
                int v = zeros[g * out + r] - 1;
                if (v < 0 || v > maxq) {
                    throw new IllegalArgumentException("zero point " + (v + 1) + " at [" + g + ", " + r
                            + "] is outside [1, " + (maxq + 1) + "], which GPTQ v1 can store");
                }
                long bit = (long) r * bits;
                int w = (int) (bit >>> 5), sh = (int) (bit & 31);
                q[g * wpr + w] |= v << sh;
                if (sh + bits > 32) q[g * wpr + w + 1] |= v >>> (32 - sh);
            }
        }
        return q;
    }

    /** Inverse of {@link #packQzeros}: zero points [groups, out] (stored value + 1). */
    public static int[] unpackQzeros(int[] qzeros, int groups, int out, int bits) {
        checkBits(bits);
        int wpr = words(out, bits);
        checkLength(qzeros, (long) groups * wpr, "qzeros");
        int[] zeros = new int[groups * out];
        int maxq = (1 << bits) - 1;
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < out; r++) {
                long bit = (long) r * bits;
                int w = (int) (bit >>> 5), sh = (int) (bit & 31);
                int v = qzeros[g * wpr + w] >>> sh;
                if (sh + bits > 32) v |= qzeros[g * wpr + w + 1] << (32 - sh);
                zeros[g * out + r] = (v & maxq) + 1;
            }
        }
        return zeros;
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
        if (a.length < need) throw new IllegalArgumentException(what + " has " + a.length + " entries, need " + need);
    }
}
