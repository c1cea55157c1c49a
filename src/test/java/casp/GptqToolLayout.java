package casp;

/**
 * GPTQ tensors as AutoGPTQ and GPTQModel lay them out, written for tests from those tools' packing
 * and unpacking rules (AutoGPTQ qlinear pack() / the dequantizing kernels' shifts and masks;
 * GPTQModel's pack_cols, its v2 -> v1 conversion before saving and its v1 -> v2 conversion after
 * loading), sharing no code with casp.kernel.GptqPacking. Words of P bits (8, 16, 32, 64) are held
 * in longs, low P bits.
 */
public final class GptqToolLayout {
    private GptqToolLayout() {}

    static long mask(int p) {
        return p == 64 ? -1L : (1L << p) - 1;
    }

    /**
     * Packs values [n][m] along the first dimension (qweight: intweight [in][out] -> [in*bits/P][out]).
     * 2/4/8 bits: P/bits values per word at shifts bits*j. 3 bits (P = 32): AutoGPTQ's unrolled
     * loop, 32 values in 3 words, values 10 and 21 split across words.
     */
    public static long[] packRows(int[][] v, int bits, int p) {
        int n = v.length, m = v[0].length;
        if (bits == 3) {
            if (p != 32 || n % 32 != 0) throw new IllegalArgumentException("3 bits: 32-bit words, n % 32 == 0");
            long[] q = new long[n * 3 / 32 * m];
            for (int col = 0; col < m; col++) {
                int i = 0, row = 0;
                while (i < n) {
                    long w0 = 0, w1 = 0, w2 = 0;
                    for (int j = 0; j < 10; j++) w0 |= (long) v[i + j][col] << (3 * j);
                    i += 10;
                    w0 |= ((long) v[i][col] << 30) & 0xffffffffL;
                    w1 |= (v[i][col] >> 2) & 1;
                    i++;
                    for (int j = 0; j < 10; j++) w1 |= (long) v[i + j][col] << (3 * j + 1);
                    i += 10;
                    w1 |= ((long) v[i][col] << 31) & 0xffffffffL;
                    w2 |= (v[i][col] >> 1) & 3;
                    i++;
                    for (int j = 0; j < 10; j++) w2 |= (long) v[i + j][col] << (3 * j + 2);
                    i += 10;
                    q[row++ * m + col] = w0;
                    q[row++ * m + col] = w1;
                    q[row++ * m + col] = w2;
                }
            }
            return q;
        }
        int per = p / bits;
        if (n % per != 0) throw new IllegalArgumentException("n % (P / bits) != 0");
        long[] q = new long[n / per * m];
        for (int row = 0; row < n / per; row++) {
            for (int col = 0; col < m; col++) {
                long w = 0;
                for (int j = 0; j < per; j++) w |= (long) v[row * per + j][col] << (bits * j);
                q[row * m + col] = w;
            }
        }
        return q;
    }

    /** Packs values [g][m] along the second dimension (qzeros [groups][out] -> [groups][out*bits/P]). */
    public static long[] packCols(int[][] v, int bits, int p) {
        int g = v.length, m = v[0].length;
        int[][] t = new int[m][g];
        for (int i = 0; i < g; i++) for (int j = 0; j < m; j++) t[j][i] = v[i][j];
        long[] packedT = packRows(t, bits, p); // [m*bits/P][g]
        int wpr = packedT.length / g;
        long[] q = new long[g * wpr];
        for (int w = 0; w < wpr; w++) for (int i = 0; i < g; i++) q[i * wpr + w] = packedT[w * g + i];
        return q;
    }

    /**
     * Unpacks [rows][m] words along the first dimension into n values per column. A last block
     * cut short (n not a multiple of the values per word or, at 3 bits, of 32: casp's streams padded
     * to whole words) reads its missing words as zeros.
     */
    public static int[][] unpackRows(long[] q, int n, int m, int bits, int p) {
        int rows = q.length / m;
        int maskq = (1 << bits) - 1;
        if (bits == 3) {
            int[][] v = new int[(n + 31) / 32 * 32][m];
            for (int col = 0; col < m; col++) {
                for (int blk = 0; blk < (n + 31) / 32; blk++) {
                    long w0 = word(q, 3 * blk, rows, m, col), w1 = word(q, 3 * blk + 1, rows, m, col), w2 = word(q, 3 * blk + 2, rows, m, col);
                    int base = 32 * blk;
                    for (int j = 0; j < 10; j++) v[base + j][col] = (int) (w0 >>> (3 * j)) & 7;
                    v[base + 10][col] = (int) ((w0 >>> 30) & 3 | (w1 << 2) & 4);
                    for (int j = 0; j < 10; j++) v[base + 11 + j][col] = (int) (w1 >>> (3 * j + 1)) & 7;
                    v[base + 21][col] = (int) ((w1 >>> 31) & 1 | (w2 << 1) & 6);
                    for (int j = 0; j < 10; j++) v[base + 22 + j][col] = (int) (w2 >>> (3 * j + 2)) & 7;
                }
            }
            return java.util.Arrays.copyOf(v, n);
        }
        int[][] v = new int[n][m];
        int per = p / bits;
        for (int i = 0; i < n; i++)
            for (int col = 0; col < m; col++) v[i][col] = (int) (word(q, i / per, rows, m, col) >>> (bits * (i % per))) & maskq;
        return v;
    }

    private static long word(long[] q, int row, int rows, int m, int col) {
        return row < rows ? q[row * m + col] : 0;
    }

    /** Unpacks [g][words] along the second dimension into m values per row. */
    public static int[][] unpackCols(long[] q, int g, int m, int bits, int p) {
        int wpr = q.length / g;
        long[] t = new long[q.length];
        for (int i = 0; i < g; i++) for (int w = 0; w < wpr; w++) t[w * g + i] = q[i * wpr + w];
        int[][] vt = unpackRows(t, m, g, bits, p);
        int[][] v = new int[g][m];
        for (int j = 0; j < m; j++) for (int i = 0; i < g; i++) v[i][j] = vt[j][i];
        return v;
    }

    /** The P-bit constant GPTQModel adds to / subtracts from every qzeros word (2, 4, 8 bits): a one per field. */
    static long ones(int bits, int p) {
        long c = 0;
        for (int s = 0; s < p; s += bits) c |= 1L << s;
        return c;
    }

    /**
     * GPTQModel's v2 -> v1 conversion before saving a "gptq" checkpoint: 2/4/8 bits subtract the
     * constant from each whole word (a zero point 0 borrows from the field above); 3 bits decrement
     * each field modulo 8.
     */
    public static long[] v2ToV1(long[] qzeros, int g, int m, int bits, int p) {
        if (bits == 3) {
            int[][] z = unpackCols(qzeros, g, m, bits, p);
            for (int[] row : z) for (int j = 0; j < m; j++) row[j] = (row[j] - 1) & 7;
            return packCols(z, bits, p);
        }
        long[] out = new long[qzeros.length];
        for (int i = 0; i < out.length; i++) out[i] = (qzeros[i] - ones(bits, p)) & mask(p);
        return out;
    }

    /** GPTQModel's v1 -> v2 conversion after loading: the inverse of {@link #v2ToV1}. */
    public static int[][] gptqModelZeros(long[] v1, int g, int m, int bits, int p) {
        if (bits == 3) {
            int[][] z = unpackCols(v1, g, m, bits, p);
            for (int[] row : z) for (int j = 0; j < m; j++) row[j] = (row[j] + 1) & 7;
            return z;
        }
        long[] v2 = new long[v1.length];
        for (int i = 0; i < v2.length; i++) v2[i] = (v1[i] + ones(bits, p)) & mask(p);
        return unpackCols(v2, g, m, bits, p);
    }

    /** AutoGPTQ's reading of v1 zeros: each field shifted out, masked, plus one. */
    public static int[][] autoGptqZeros(long[] v1, int g, int m, int bits, int p) {
        int[][] z = unpackCols(v1, g, m, bits, p);
        for (int[] row : z) for (int j = 0; j < m; j++) row[j] = row[j] + 1;
        return z;
    }

    /** AutoGPTQ's v1 packing of zero points (pack(): zeros - 1, fields OR-ed in; zero points >= 1). */
    public static long[] autoGptqQzeros(int[][] zeros, int bits) {
        int[][] zm1 = new int[zeros.length][zeros[0].length];
        for (int i = 0; i < zeros.length; i++)
            for (int j = 0; j < zeros[0].length; j++) {
                if (zeros[i][j] < 1) throw new IllegalArgumentException("AutoGPTQ's pack() corrupts a zero point 0");
                zm1[i][j] = zeros[i][j] - 1;
            }
        return packCols(zm1, bits, 32);
    }

    /**
     * The float weight W [out][in] of the tensors: scales[g_idx[c]][r] * (q[c][r] - zero[g_idx[c]][r]),
     * computed in float32 from the fp16 scale, as the tools' float32 dequantization does.
     */
    public static float[] dequantize(int[][] q, int[][] zeros, float[][] scales, int[] gIdx) {
        int in = q.length, out = q[0].length;
        float[] w = new float[out * in];
        for (int r = 0; r < out; r++)
            for (int c = 0; c < in; c++) w[r * in + c] = scales[gIdx[c]][r] * (float) (q[c][r] - zeros[gIdx[c]][r]);
        return w;
    }
}
