package casp.kernel;

import casp.GptqToolLayout;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Zero points and codes in the layouts AutoGPTQ and GPTQModel write ({@link GptqToolLayout}):
 * GPTQModel's v1 with borrows across fields, v2, and words of 8, 16, 32 and 64 bits.
 */
class GptqToolZerosTest {
    static int[][] random(int n, int m, int bits, long seed, boolean manyZeros) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] v = new int[n][m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) v[i][j] = manyZeros && r.nextInt(3) == 0 ? 0 : r.nextInt(1 << bits);
        return v;
    }

    static int[] flat(int[][] v) {
        int[] f = new int[v.length * v[0].length];
        for (int i = 0; i < v.length; i++) System.arraycopy(v[i], 0, f, i * v[0].length, v[0].length);
        return f;
    }

    @Test
    void gptqModelV1WithBorrowedZerosDecodesExactly() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int p : bits == 3 ? new int[] {32} : new int[] {8, 16, 32, 64}) {
                int groups = 5, out = 192; // 192 = 3 * 64: whole words at every width
                int[][] zeros = random(groups, out, bits, 31L * bits + p, true);
                long[] v1 = GptqToolLayout.v2ToV1(GptqToolLayout.packCols(zeros, bits, p), groups, out, bits, p);
                int[] got = GptqPacking.decodeZeros(v1, groups, out, bits, p, true);
                assertArrayEquals(flat(zeros), got, bits + " bits, " + p + "-bit words");
                assertArrayEquals(flat(GptqToolLayout.gptqModelZeros(v1, groups, out, bits, p)), got, "GPTQModel's own reading");
                assertArrayEquals(v1, GptqPacking.encodeZeros(flat(zeros), groups, out, bits, p, true), "casp writes GPTQModel's words");
                if (bits != 3) {
                    // a field-by-field reading (AutoGPTQ's) gets the borrowed fields wrong: the bug casp no longer has
                    int[][] fieldwise = GptqToolLayout.autoGptqZeros(v1, groups, out, bits, p);
                    assertTrue(!java.util.Arrays.deepEquals(fieldwise, zeros), "zero points 0 borrow at " + bits + " bits");
                }
                long[] v2 = GptqToolLayout.packCols(zeros, bits, p);
                assertArrayEquals(flat(zeros), GptqPacking.decodeZeros(v2, groups, out, bits, p, false), "v2");
                assertArrayEquals(v2, GptqPacking.encodeZeros(flat(zeros), groups, out, bits, p, false), "v2 words");
            }
        }
    }

    @Test
    void autoGptqZerosDecodeAsAutoGptqReadsThem() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            int groups = 4, out = 96;
            int[][] zeros = random(groups, out, bits, bits, false);
            for (int[] row : zeros) for (int j = 0; j < out; j++) row[j] = Math.max(1, row[j]);
            long[] v1 = GptqToolLayout.autoGptqQzeros(zeros, bits);
            int[] got = GptqPacking.decodeZeros(v1, groups, out, bits, 32, true);
            assertArrayEquals(flat(GptqToolLayout.autoGptqZeros(v1, groups, out, bits, 32)), got, bits + " bits");
            assertArrayEquals(flat(zeros), got);
        }
    }

    @Test
    void qweightOfEveryWordSizeBecomesTheSameInt32Stream() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            int in = 128, out = 7;
            int[][] codes = random(in, out, bits, 5L * bits, false);
            int[] codesOutIn = new int[out * in];
            for (int c = 0; c < in; c++) for (int r = 0; r < out; r++) codesOutIn[r * in + c] = codes[c][r];
            int[] expect = GptqPacking.packQweight(codesOutIn, in, out, bits);
            for (int p : bits == 3 ? new int[] {32} : new int[] {8, 16, 32, 64}) {
                long[] words = GptqToolLayout.packRows(codes, bits, p);
                assertEquals((long) in * bits / p * out, words.length);
                assertArrayEquals(expect, GptqPacking.qweightToInt32(words, in, out, bits, p), bits + " bits, " + p + "-bit words");
                assertArrayEquals(codesOutIn, GptqPacking.unpackQweight(GptqPacking.qweightToInt32(words, in, out, bits, p), in, out, bits));
            }
        }
        assertThrows(IllegalArgumentException.class, () -> GptqPacking.checkPackBits(3, 64));
        assertThrows(IllegalArgumentException.class, () -> GptqPacking.checkPackBits(4, 12));
    }
}
