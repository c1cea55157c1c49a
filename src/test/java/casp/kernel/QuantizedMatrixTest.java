package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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
            this(rows, cols, bits, groupSize, seed, perm, QuantizedMatrix.Layout.preferred());
        }

        Sample(int rows, int cols, int bits, int groupSize, long seed, int[] perm, QuantizedMatrix.Layout layout) {
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
            q = QuantizedMatrix.fromCodes(rows, cols, bits, groupSize, codes, scales, zeros, perm, layout);
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
     * The row-lane layout (64-row tiles, lanes = rows, codes read as denormal floats) holds the same
     * matrix as the slot layout and both products agree with the dense one, for tails of rows (not
     * a multiple of 16 or 64), of columns (not whole slots) and groups of 16 columns up to the row.
     */
    @Test
    void rowLaneLayoutHoldsTheSameMatrixAndProducts() {
        Assumptions.assumeTrue(DequantKernels.ROW_LANES_USABLE,
                "the row-lane kernels need the Vector API with FMA; this JVM has " + VectorSupport.bits() + "-bit vectors");
        int shapes = 0;
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int rows : new int[] {1, 7, 16, 63, 64, 65, 130}) {
                for (int cols : new int[] {16, 33, 128, 256, 1000, 1040}) {
                    for (int gs : new int[] {0, 16, 128}) {
                        long seed = rows * 7919L + cols * 31L + gs + bits;
                        Sample lanes = new Sample(rows, cols, bits, gs, seed, null, QuantizedMatrix.Layout.ROW_LANES);
                        Sample slots = new Sample(rows, cols, bits, gs, seed, null, QuantizedMatrix.Layout.SLOTS);
                        String what = bits + "b " + rows + "x" + cols + " g" + gs;
                        assertTrue(lanes.q.matvecKernel().startsWith("simd-" + bits + "bit-row-lanes"), what + ": " + lanes.q.matvecKernel());
                        for (int r = 0; r < rows; r++) {
                            for (int j = 0; j < cols; j++) assertEquals(lanes.codes[r * cols + j], lanes.q.storedCode(r, j), what);
                        }
                        float[] w = lanes.q.dequantize();
                        assertArrayEquals(slots.q.dequantize(), w, what);
                        float[] x = randomVector(cols + 1, seed);
                        float[] y = new float[rows + 1], ys = new float[rows + 1];
                        lanes.q.matvec(x, 1, y, 1);
                        slots.q.matvec(x, 1, ys, 1);
                        double[] dense = denseMatvec(w, rows, cols, x, 1);
                        assertClose(dense, y, 1, w, cols, x, 1, "row lanes " + what);
                        assertClose(dense, ys, 1, w, cols, x, 1, "slots " + what);
                        assertEquals(0f, y[0], "nothing written before yOff");
                        shapes++;
                    }
                }
            }
        }
        assertEquals(504, shapes);
    }

    /**
     * The mat-mat of the row-lane layout past one 128 x 1024 tile: the register tile on blocks of
     * W^T (up to TILED_MAX_TOKENS tokens; 9 and 13: ragged edges of tokens and rows) and the GEMM
     * on transposed tiles (more tokens).
     */
    @Test
    void rowLaneMatmulEqualsDenseProduct() {
        Assumptions.assumeTrue(DequantKernels.ROW_LANES_USABLE, "the row-lane kernels need the Vector API with FMA");
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int[] shape : new int[][] {{7, 33}, {131, 2096}, {64, 128}}) {
                for (int tokens : new int[] {9, 13, DequantKernels.TILED_MAX_TOKENS + 1}) {
                    int rows = shape[0], cols = shape[1];
                    int[] perm = new int[cols];
                    for (int j = 0; j < cols; j++) perm[j] = cols - 1 - j;
                    Sample s = new Sample(rows, cols, bits, 16, rows + cols + bits, perm, QuantizedMatrix.Layout.ROW_LANES);
                    float[] w = s.q.dequantize();
                    assertArrayEquals(s.dense(perm), w);
                    float[] x = randomVector(tokens * cols + 1, tokens);
                    float[] y = new float[tokens * rows + 1];
                    s.q.matmul(x, 1, tokens, y, 1);
                    for (int t = 0; t < tokens; t++) {
                        assertClose(denseMatvec(w, rows, cols, x, 1 + t * cols), y, 1 + t * rows, w, cols, x, 1 + t * cols,
                                bits + "b matmul " + rows + "x" + cols + " tokens " + tokens + " token " + t);
                    }
                }
            }
        }
    }

    /**
     * The row-lane kernel pre-scales x by up to 2^88; inputs too large for that are scaled down by
     * a power of two first, so they give the dense product too; NaN propagates to every row. The
     * tolerance is that of the factored sum s (sum q x - z X) the kernels compute: a float sum of
     * terms s (q + z) |x|, which cancel where a huge x meets a code equal to its zero point.
     */
    @Test
    void rowLaneMatvecTakesInputsOfAnySize() {
        Assumptions.assumeTrue(DequantKernels.ROW_LANES_USABLE, "the row-lane kernels need the Vector API with FMA");
        for (float big : new float[] {1e9f, 1e20f, 3e38f}) {
            Sample s = new Sample(70, 256, 2, 128, 5, null, QuantizedMatrix.Layout.ROW_LANES);
            float[] x = randomVector(256, 6);
            x[17] = big;
            x[200] = -big / 3;
            float[] w = s.q.dequantize();
            float[] y = new float[70];
            s.q.matvec(x, 0, y, 0);
            double[] dense = denseMatvec(w, 70, 256, x, 0);
            for (int r = 0; r < 70; r++) {
                if (Math.abs(dense[r]) > Float.MAX_VALUE) continue; // overflows float in any kernel
                assertTrue(Float.isFinite(y[r]), "|x| = " + big + " row " + r + ": " + y[r]);
            }
            if (big < 1e30f) assertCloseFactored(s, x, dense, y, "|x| = " + big);
        }
        Sample s = new Sample(20, 256, 4, 128, 5, null, QuantizedMatrix.Layout.ROW_LANES);
        float[] x = randomVector(256, 6);
        x[3] = Float.NaN;
        float[] y = new float[20];
        s.q.matvec(x, 0, y, 0);
        for (int r = 0; r < 20; r++) assertTrue(Float.isNaN(y[r]), "NaN input, row " + r + ": " + y[r]);
        Sample three = new Sample(20, 300, 3, 128, 7, null, QuantizedMatrix.Layout.ROW_LANES);
        float[] x3 = randomVector(300, 8);
        x3[299] = 1e25f;
        float[] w3 = three.q.dequantize(), y3 = new float[20];
        three.q.matvec(x3, 0, y3, 0);
        assertCloseFactored(three, x3, denseMatvec(w3, 20, 300, x3, 0), y3, "3 bits, |x| = 1e25 in the last, partial group");
    }

    /** y against the dense product with the tolerance of the factored sum: 1e-5 sum_c s (q + z) |x_c| per row. */
    private static void assertCloseFactored(Sample s, float[] x, double[] dense, float[] y, String what) {
        for (int r = 0; r < s.rows; r++) {
            double mag = 0;
            for (int c = 0; c < s.cols; c++) {
                int g = r * s.groups + c / s.groupSize;
                mag += s.scales[g] * (s.codes[r * s.cols + c] + s.zeros[g]) * Math.abs((double) x[c]);
            }
            assertEquals(dense[r], y[r], 1e-5 * mag, what + " row " + r);
        }
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
            for (int i = 0; i < s.zeros.length; i++) s.zeros[i] -= 1; // v1 (whole-word) holds zero points [0, 2^bits)
            QuantizedMatrix q = QuantizedMatrix.fromCodes(rows, cols, bits, gs, s.codes, s.scales, s.zeros);
            GptqPacking.Tensors t = q.toGptq();
            assertEquals(cols * bits / 32 * rows, t.qweight.length);
            assertEquals(3 * rows * bits / 32, t.qzeros.length);
            assertArrayEquals(GptqPacking.sequentialGroupIndex(cols, gs), t.gIdx);
            // W[r,c] = scales[g_idx[c], r] * (q[c,r] - zero[g_idx[c], r]) straight from the tensors.
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
            zeros[i] = r.nextInt(16);
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
