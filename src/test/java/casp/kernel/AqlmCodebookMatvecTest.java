package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The codebook mat-vec (vector and scalar loops) against a float64 sum over the decoded weight. */
class AqlmCodebookMatvecTest {
    @Test
    void matchesTheDecodedWeightAtAwkwardSizes() {
        SplittableRandom r = new SplittableRandom(3);
        for (int gsize : new int[] {8, 16}) {
            for (int[] shape : new int[][] {{1, 1, 1, 4}, {7, 3, 2, 8}, {33, 17, 1, 16}, {129, 5, 2, 6}}) {
                int rows = shape[0], groups = shape[1], m = shape[2], k = 1 << shape[3];
                char[] codes = new char[rows * groups * m];
                for (int i = 0; i < codes.length; i++) codes[i] = (char) r.nextInt(k);
                float[] cb = new float[m * k * gsize], scales = new float[rows], x = new float[groups * gsize + 3];
                for (int i = 0; i < cb.length; i++) cb[i] = (float) r.nextGaussian();
                for (int i = 0; i < rows; i++) scales[i] = (float) (0.5 + r.nextDouble());
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                int cols = groups * gsize;
                float[] w = AqlmCodebookMatvec.decode(codes, rows, groups, m, cb, k, gsize, scales, cols);
                float[] y = new float[rows + 1], ys = new float[rows + 1];
                AqlmCodebookMatvec.matvec(codes, rows, groups, m, cb, k, gsize, scales, x, 3, y, 1);
                AqlmCodebookMatvec.rowsScalar(codes, 0, rows, groups, m, cb, k, gsize, scales, x, 3, ys, 1);
                for (int o = 0; o < rows; o++) {
                    double want = 0, mag = 0;
                    for (int c = 0; c < cols; c++) {
                        want += (double) w[o * cols + c] * x[3 + c];
                        mag += Math.abs((double) w[o * cols + c] * x[3 + c]);
                    }
                    String at = gsize + "-input groups, " + rows + "x" + groups + "x" + m + " row " + o;
                    assertEquals(want, y[1 + o], 1e-5 * (1 + mag), at);
                    assertEquals(want, ys[1 + o], 1e-5 * (1 + mag), at + " (scalar)");
                }
            }
        }
    }
}
