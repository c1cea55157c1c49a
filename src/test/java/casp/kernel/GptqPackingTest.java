package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class GptqPackingTest {

    static int[] randomCodes(int n, int bits, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] c = new int[n];
        for (int i = 0; i < n; i++) c[i] = r.nextInt(1 << bits);
        return c;
    }

    /**
     * Independent oracle of AutoGPTQ's pack loop for one output column: 2/4/8 bits put 32/bits
     * codes per word at shifts bits*j; 3 bits fill three words in the 10 + (2|1) + 10 + (1|2) + 10
     * pattern of its hand-unrolled loop.
     */
    static int[] autoGptqColumn(int[] col, int bits) {
        int[] q = new int[col.length * bits / 32];
        int i = 0, row = 0;
        while (row < q.length) {
            if (bits != 3) {
                for (int j = 0; j < 32 / bits; j++) q[row] |= col[i + j] << (bits * j);
                i += 32 / bits;
                row++;
            } else {
                for (int j = 0; j < 10; j++) q[row] |= col[i + j] << (3 * j);
                i += 10;
                q[row] |= col[i] << 30;
                row++;
                q[row] |= (col[i] >> 2) & 1;
                i++;
                for (int j = 0; j < 10; j++) q[row] |= col[i + j] << (3 * j + 1);
                i += 10;
                q[row] |= col[i] << 31;
                row++;
                q[row] |= (col[i] >> 1) & 3;
                i++;
                for (int j = 0; j < 10; j++) q[row] |= col[i + j] << (3 * j + 2);
                i += 10;
                row++;
            }
        }
        return q;
    }

    @Test
    void qweightMatchesAutoGptqLayout() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            int in = 96, out = 5;
            int[] codes = randomCodes(in * out, bits, bits);
            int[] q = GptqPacking.packQweight(codes, in, out, bits);
            assertEquals(in * bits / 32 * out, q.length);
            for (int r = 0; r < out; r++) {
                int[] col = new int[in];
                System.arraycopy(codes, r * in, col, 0, in);
                int[] expect = autoGptqColumn(col, bits);
                for (int w = 0; w < expect.length; w++) assertEquals(expect[w], q[w * out + r], "bits " + bits + " word " + w + " col " + r);
            }
        }
    }

    @Test
    void threeBitCodesStraddleWords() {
        // Code 10 has its low two bits at the top of word 0 and its high bit at the bottom of word 1.
        int[] codes = new int[32];
        codes[10] = 0b101;
        codes[21] = 0b110;
        int[] q = GptqPacking.packQweight(codes, 32, 1, 3);
        assertEquals(0b01 << 30, q[0]);
        assertEquals(1 | (0 << 31), q[1]);
        assertEquals(0b11, q[2]);
        assertArrayEquals(codes, GptqPacking.unpackQweight(q, 32, 1, 3));
    }

    @Test
    void roundTripsEveryWidthAndAwkwardShapes() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int in : new int[] {1, 7, 17, 32, 33, 129}) {
                for (int out : new int[] {1, 7, 33}) {
                    int[] codes = randomCodes(in * out, bits, 31L * in + out);
                    int[] q = GptqPacking.packQweight(codes, in, out, bits);
                    assertEquals(GptqPacking.words(in, bits) * out, q.length);
                    assertArrayEquals(codes, GptqPacking.unpackQweight(q, in, out, bits), bits + "b " + in + "x" + out);
                }
            }
        }
    }

    @Test
    void qzerosStoreZeroMinusOneAlongOut() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            int groups = 3, out = 64;
            int[] zeros = randomCodes(groups * out, bits, 7);
            for (int i = 0; i < zeros.length; i++) zeros[i] = Math.max(1, zeros[i]); // AutoGPTQ's range [1, 2^bits)
            int[] qz = GptqPacking.packQzeros(zeros, groups, out, bits);
            assertEquals(groups * out * bits / 32, qz.length);
            for (int g = 0; g < groups; g++) {
                int[] row = new int[out];
                for (int r = 0; r < out; r++) row[r] = zeros[g * out + r] - 1;
                int[] expect = autoGptqColumn(row, bits);
                for (int w = 0; w < expect.length; w++) assertEquals(expect[w], qz[g * expect.length + w]);
            }
            assertArrayEquals(zeros, GptqPacking.unpackQzeros(qz, groups, out, bits));
        }
        assertThrows(IllegalArgumentException.class, () -> GptqPacking.packQzeros(new int[] {16}, 1, 1, 4));
        assertThrows(IllegalArgumentException.class, () -> GptqPacking.packQweight(new int[] {4}, 1, 1, 2));
        assertThrows(IllegalArgumentException.class, () -> GptqPacking.checkBits(5));
    }
}
