package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class QuantizedMatrixTest {

    /** A random quantized matrix with its codes, scales and zeros kept for the oracle. */
    static final class Sample {
        final int rows, cols, bits, groupSize, groups;
        final int[] codes;
        final float[] scales, zeros;
        final QuantizedMatrix q;

        Sample(int rows, int cols, int bits, int groupSize, long seed, int[] perm) {
            SplittableRandom r = new SplittableRandom(seed);
            this.rows = rows;
            this.cols = cols;
            this.bits = bits;
            this.groupSize = groupSize <= 0 || groupSize >= cols ? cols : groupSize;
            this.groups = (cols + this.groupSize - 1) / this.groupSize;
            codes = GptqPackingTest.randomCodes(rows * cols, bits, seed);
            scales = new float[rows * groups];
            zeros = new float[rows * groups];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = (float) (0.01 + 0.1 * r.nextDouble());
                zeros[i] = 1 + r.nextInt(1 << bits);
            }
            q = QuantizedMatrix.fromCodes(rows, cols, bits, groupSize, codes, scales, zeros, perm);
        }

        /** W[r, input(j)] from the explicit formula. */
        float[] dense(int[] perm) {
            float[] w = new float[rows * cols];
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols; j++) {
                    int g = j / groupSize;
                    int c = perm == null ? j : perm[j];
                    w[r * cols + c] = scales[r * groups + g] * (codes[r * cols + j] - zeros[r * groups + g]);
                }
            }
            return w;
        }
    }

    static float[] randomVector(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (2 * r.nextDouble() - 1);
        return x;
    }

    /** Reference y = W x in double. */
    static double[] denseMatvec(float[] w, int rows, int cols, float[] x, int xOff) {
        double[] y = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < cols; c++) s += (double) w[r * cols + c] * x[xOff + c];
            y[r] = s;
        }
        return y;
    }

    /** Tolerance: float rounding of a sum of cols terms of size |w||x|. */
    static void assertClose(double[] expect, float[] got, int off, float[] w, int cols, float[] x, int xOff, String what) {
        for (int r = 0; r < expect.length; r++) {
            double mag = 0;
            for (int c = 0; c < cols; c++) mag += Math.abs((double) w[r * cols + c] * x[xOff + c]);
            double tol = 1e-5 * mag + 1e-6;
            assertEquals(expect[r], got[off + r], tol, what + " row " + r);
        }
    }

    @Test
    void codesRoundTripThroughTheSlotLayout() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int cols : new int[] {1, 7, 16, 17, 33, 129, 170, 1000}) {
                Sample s = new Sample(3, cols, bits, 0, cols * 10L + bits, null);
                for (int r = 0; r < 3; r++) {
                    for (int j = 0; j < cols; j++) assertEquals(s.codes[r * cols + j], s.q.storedCode(r, j));
                }
                assertArrayEquals(s.dense(null), s.q.dequantize());
            }
        }
    }

    @Test
    void matvecEqualsDenseProductOfTheDequantizedMatrix() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int rows : new int[] {1, 7, 17, 33}) {
                for (int cols : new int[] {1, 7, 16, 33, 129, 256, 336, 384}) {
                    for (int gs : new int[] {0, 16, 32, 128}) {
                        Sample s = new Sample(rows, cols, bits, gs, rows * 1000L + cols * 10L + bits + gs, null);
                        float[] w = s.q.dequantize();
                        float[] x = randomVector(cols + 3, cols);
                        float[] y = new float[rows + 2];
                        s.q.matvec(x, 3, y, 2);
                        assertClose(denseMatvec(w, rows, cols, x, 3), y, 2, w, cols, x, 3,
                                bits + "b " + rows + "x" + cols + " g" + gs);
                    }
                }
            }
        }
    }

    /**
     * The 2- and 4-bit kernels that read codes as denormal floats do the same roundings as the
     * converting ones (every product is exact, only scaled by a power of two), so on inputs of
     * normal size the two agree bit for bit, and both agree with the dense product.
     */
    @Test
    void denormalKernelsEqualTheConvertingKernelsBitForBit() {
        Assumptions.assumeTrue(DequantKernels.VECTOR && DequantSimd.L == 16,
                "the 8-slot segment kernels need 16 float lanes (AVX-512); this JVM has " + DequantSimd.L);
        int compared = 0;
        for (int bits : new int[] {2, 4}) {
            for (int rows : new int[] {4, 7, 12, 33}) { // quads and tails
                for (int cols : new int[] {128, 256, 384, 1024, 1040}) {
                    for (int gs : new int[] {128, 256}) {
                        Sample s = new Sample(rows, cols, bits, gs, rows * 7919L + cols + gs + bits, null);
                        if (!DequantSimd.usesSeg8(s.q)) continue; // 1040 columns: not whole segments, other kernel
                        float[] x = randomVector(s.q.slots * QuantizedMatrix.SLOT, rows + cols);
                        for (int j = cols; j < x.length; j++) x[j] = 0; // padding columns carry zero input
                        float[] xg = new float[s.q.groups];
                        for (int j = 0; j < cols; j++) xg[j / s.q.groupSize] += x[j];
                        float[] xd = DequantSimd.denormalInput(s.q, x, 0);
                        float[] xp = DequantSimd.prescaledX(s.q, x, 0);
                        assertNotNull(xd, rows + "x" + cols);
                        float[] yd = new float[rows], yc = new float[rows];
                        DequantSimd.rows(s.q, 0, rows, x, 0, null, xd, DequantSimd.segmentSums(s.q, x, 0, DequantSimd.DENORMAL_SCALE), xg, yd, 0);
                        DequantSimd.rows(s.q, 0, rows, x, 0, xp, null, DequantSimd.segmentSums(s.q, x, 0, 1f), xg, yc, 0);
                        for (int r = 0; r < rows; r++) {
                            assertEquals(Float.floatToIntBits(yc[r]), Float.floatToIntBits(yd[r]),
                                    bits + "b " + rows + "x" + cols + " g" + gs + " row " + r + ": " + yc[r] + " vs " + yd[r]);
                        }
                        float[] w = s.q.dequantize();
                        assertClose(denseMatvec(w, rows, cols, x, 0), yd, 0, w, cols, x, 0, "denormal " + rows + "x" + cols);
                        compared++;
                    }
                }
            }
        }
        assertEquals(64, compared, "shapes that take the segment kernels");
        Sample s = new Sample(4, 256, 2, 128, 5, null);
        float[] huge = randomVector(256, 6);
        huge[17] = 1e20f;
        assertNull(DequantSimd.denormalInput(s.q, huge, 0), "|x| = 1e20 must take the converting kernel");
        huge[17] = Float.NaN;
        assertNull(DequantSimd.denormalInput(s.q, huge, 0), "NaN input must take the converting kernel");
        assertNull(DequantSimd.denormalInput(new Sample(4, 256, 3, 128, 5, null).q, randomVector(256, 6), 0), "3-bit codes have no denormal kernel");
    }

    /** The probe that enables the denormal kernel measures something finite and positive. */
    @Test
    void denormalProbeGivesAFiniteRatio() {
        double ratio = DenormalProbe.ratio();
        assertTrue(ratio > 0 && Double.isFinite(ratio), "ratio " + ratio);
    }

    @Test
    void largeMatvecRunsInParallelAndAgrees() {
        Sample s = new Sample(1000, 1024, 2, 128, 99, null);
        float[] w = s.q.dequantize();
        float[] x = randomVector(1024, 5);
        float[] y = new float[1000];
        s.q.matvec(x, 0, y, 0);
        assertClose(denseMatvec(w, 1000, 1024, x, 0), y, 0, w, 1024, x, 0, "1000x1024");
    }

    @Test
    void permutedInputsMatchTheirDenseMatrix() {
        int rows = 9, cols = 64;
        int[] perm = new int[cols];
        for (int j = 0; j < cols; j++) perm[j] = (j * 37 + 11) % cols; // 37 coprime with 64
        for (int bits : new int[] {2, 3, 4, 8}) {
            Sample s = new Sample(rows, cols, bits, 16, bits, perm);
            float[] w = s.dense(perm);
            assertArrayEquals(w, s.q.dequantize());
            float[] x = randomVector(cols, 3);
            float[] y = new float[rows];
            s.q.matvec(x, 0, y, 0);
            assertClose(denseMatvec(w, rows, cols, x, 0), y, 0, w, cols, x, 0, "perm " + bits);
        }
    }

    @Test
    void matmulEqualsDenseProductForFewAndManyTokens() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int tokens : new int[] {1, 3, 9, 33}) {
                for (int[] shape : new int[][] {{7, 33}, {129, 1100}, {33, 48}}) {
                    int rows = shape[0], cols = shape[1];
                    int[] perm = null;
                    if (tokens == 9) {
                        perm = new int[cols];
                        for (int j = 0; j < cols; j++) perm[j] = cols - 1 - j;
                    }
                    Sample s = new Sample(rows, cols, bits, 16, tokens * 7L + bits + rows, perm);
                    float[] w = s.q.dequantize();
                    float[] x = randomVector(tokens * cols + 1, tokens);
                    float[] y = new float[tokens * rows + 1];
                    s.q.matmul(x, 1, tokens, y, 1);
                    for (int t = 0; t < tokens; t++) {
                        double[] e = denseMatvec(w, rows, cols, x, 1 + t * cols);
                        assertClose(e, y, 1 + t * rows, w, cols, x, 1 + t * cols, bits + "b tokens " + tokens + " " + rows + "x" + cols);
                    }
                }
            }
        }
    }

    @Test
    void gptqRoundTripKeepsTheMatrix() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            int rows = 64, cols = 96, gs = 32;
            Sample s = new Sample(rows, cols, bits, gs, 17 + bits, null);
            for (int i = 0; i < s.scales.length; i++) s.scales[i] = Fp16.toFloat(Fp16.fromFloat(s.scales[i]));
            QuantizedMatrix q = QuantizedMatrix.fromCodes(rows, cols, bits, gs, s.codes, s.scales, s.zeros);
            GptqPacking.Tensors t = q.toGptq();
            assertEquals(cols * bits / 32 * rows, t.qweight.length);
            assertEquals(3 * rows * bits / 32, t.qzeros.length);
            assertArrayEquals(GptqPacking.sequentialGroupIndex(cols, gs), t.gIdx);
            // W[r,c] = scales[g_idx[c], r] * (q[c,r] - (qzeros[g_idx[c], r] + 1)) straight from the tensors.
            int[] codes = GptqPacking.unpackQweight(t.qweight, cols, rows, bits);
            int[] z = GptqPacking.unpackQzeros(t.qzeros, 3, rows, bits);
            float[] w = q.dequantize();
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int g = t.gIdx[c];
                    float expect = Fp16.toFloat(t.scales[g * rows + r]) * (codes[r * cols + c] - z[g * rows + r]);
                    assertEquals(expect, w[r * cols + c], "bits " + bits + " at " + r + "," + c);
                }
            }
            QuantizedMatrix back = QuantizedMatrix.fromGptq(t.qweight, t.qzeros, t.scales, t.gIdx, cols, rows, bits, gs);
            assertArrayEquals(w, back.dequantize());
        }
    }

    @Test
    void actOrderGroupIndexBecomesAPermutation() {
        int rows = 8, cols = 64, gs = 16, bits = 4;
        // Act-order: inputs visited in a shuffled order, groups of 16 consecutive visited inputs.
        int[] order = new int[cols];
        for (int j = 0; j < cols; j++) order[j] = (j * 23 + 5) % cols;
        int[] gIdx = new int[cols];
        for (int j = 0; j < cols; j++) gIdx[order[j]] = j / gs;
        int groups = cols / gs;
        int[] codes = GptqPackingTest.randomCodes(rows * cols, bits, 3); // [out, in] input order
        int[] zeros = new int[groups * rows];
        float[] scales = new float[groups * rows];
        SplittableRandom r = new SplittableRandom(4);
        for (int i = 0; i < zeros.length; i++) {
            zeros[i] = 1 + r.nextInt(16);
            scales[i] = Fp16.toFloat(Fp16.fromFloat((float) r.nextDouble()));
        }
        int[] qweight = GptqPacking.packQweight(codes, cols, rows, bits);
        int[] qzeros = GptqPacking.packQzeros(zeros, groups, rows, bits);
        QuantizedMatrix q = QuantizedMatrix.fromGptq(qweight, qzeros, Fp16.fromFloats(scales), gIdx, cols, rows, bits, 0);
        float[] w = q.dequantize();
        for (int o = 0; o < rows; o++) {
            for (int c = 0; c < cols; c++) {
                int g = gIdx[c];
                assertEquals(scales[g * rows + o] * (codes[o * cols + c] - zeros[g * rows + o]), w[o * cols + c]);
            }
        }
        float[] x = randomVector(cols, 8);
        float[] y = new float[rows];
        q.matvec(x, 0, y, 0);
        assertClose(denseMatvec(w, rows, cols, x, 0), y, 0, w, cols, x, 0, "act-order");
        GptqPacking.Tensors t = q.toGptq();
        assertArrayEquals(gIdx, t.gIdx);
        assertArrayEquals(qweight, t.qweight);
        assertArrayEquals(qzeros, t.qzeros);
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> new Sample(2, 64, 4, 24, 1, null));
        assertThrows(IllegalArgumentException.class, () -> new Sample(2, 64, 5, 16, 1, null));
        Sample s = new Sample(2, 64, 4, 16, 1, null);
        assertThrows(IllegalArgumentException.class, () -> s.q.matvec(new float[63], 0, new float[2], 0));
    }
}
