package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** AdditiveQuant against plain loops, at widths that are not multiples of 8 or of a vector. */
class AdditiveQuantTest {
    private static final int[] COLS = {1, 7, 8, 17, 33, 64};

    private static int[] codes(int n, int k, Random rnd) {
        int[] c = new int[n];
        for (int i = 0; i < n; i++) c[i] = rnd.nextInt(k);
        return c;
    }

    private static float[] floats(int n, Random rnd) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) rnd.nextGaussian();
        return f;
    }

    private static double[] doubles(int n, Random rnd) {
        double[] f = new double[n];
        for (int i = 0; i < n; i++) f[i] = rnd.nextGaussian();
        return f;
    }

    /** W[r][c] = s_r sum_m cb[m][codes[r][c/8][m]][c%8], directly from the definition. */
    private static double naiveWeight(int[] codes, int groups, int m, float[] cb, int k, float[] s, int r, int c) {
        double v = 0;
        for (int b = 0; b < m; b++) v += cb[(b * k + codes[(r * groups + c / 8) * m + b]) * 8 + c % 8];
        return s[r] * v;
    }

    @Test
    void decodeAndLookupMatVecMatchTheDefinition() {
        Random rnd = new Random(1);
        for (int cols : COLS) {
            for (int[] mb : new int[][]{{1, 2}, {2, 4}, {3, 5}}) {
                int rows = 5 + cols % 4, groups = (cols + 7) / 8, m = mb[0], k = 1 << mb[1];
                int[] c = codes(rows * groups * m, k, rnd);
                float[] cb = floats(m * k * 8, rnd), s = floats(rows, rnd), x = floats(cols + 3, rnd);
                float[] w = new float[rows * cols];
                AdditiveQuant.decode(c, rows, groups, m, cb, k, s, cols, w);
                double[] wd = new double[rows * groups * 8];
                double[] cbd = new double[cb.length], sd = new double[rows];
                for (int i = 0; i < cb.length; i++) cbd[i] = cb[i];
                for (int i = 0; i < rows; i++) sd[i] = s[i];
                AdditiveQuant.decode(c, rows, groups, m, cbd, k, sd, wd);
                float[] y = new float[rows + 2];
                AdditiveQuant.matvec(AdditiveQuant.transposeCodes(c, rows, groups * m), rows, groups, m,
                        AdditiveQuant.transposeCodebooks(cb, m, k), k, s, cols, x, 3, y, 2,
                        new float[groups * m * k], new float[groups * 8]);
                for (int r = 0; r < rows; r++) {
                    double dot = 0, mag = 0;
                    for (int col = 0; col < cols; col++) {
                        double want = naiveWeight(c, groups, m, cb, k, s, r, col);
                        assertEquals(want, w[r * cols + col], 1e-5 * (1 + Math.abs(want)));
                        assertEquals(want, wd[r * groups * 8 + col], 1e-12 * (1 + Math.abs(want)));
                        dot += want * x[3 + col];
                        mag += Math.abs(want * x[3 + col]);
                    }
                    assertEquals(dot, y[2 + r], 1e-5 * (1 + mag), "cols " + cols + " row " + r);
                }
            }
        }
    }

    @Test
    void lookupMatVecSplitOverThePoolMatchesTheDecodedWeight() {
        // rows x groups x m = 2050 x 130 = 266500 lookups: above the threshold that splits rows over the pool.
        Random rnd = new Random(5);
        int rows = 2050, cols = 1037, groups = (cols + 7) / 8, m = 1, k = 64;
        int[] c = codes(rows * groups * m, k, rnd);
        float[] cb = floats(m * k * 8, rnd), s = floats(rows, rnd), x = floats(cols, rnd);
        float[] w = new float[rows * cols];
        AdditiveQuant.decode(c, rows, groups, m, cb, k, s, cols, w);
        float[] y = new float[rows];
        AdditiveQuant.matvec(AdditiveQuant.transposeCodes(c, rows, groups * m), rows, groups, m,
                AdditiveQuant.transposeCodebooks(cb, m, k), k, s, cols, x, 0, y, 0, new float[groups * m * k], new float[groups * 8]);
        for (int r = 0; r < rows; r++) {
            double dot = 0, mag = 0;
            for (int col = 0; col < cols; col++) {
                dot += (double) w[r * cols + col] * x[col];
                mag += Math.abs((double) w[r * cols + col] * x[col]);
            }
            assertEquals(dot, y[r], 1e-5 * (1 + mag), "row " + r);
        }
    }

    @Test
    void scoresAndQuadraticFormsMatchTheDefinition() {
        Random rnd = new Random(2);
        int k = 19;
        double[] cb = doubles(3 + k * 8, rnd);
        double[] h = doubles(10 * 10, rnd); // an 8 x 8 block inside a 10-wide matrix
        double[] norms = new double[k + 1];
        AdditiveQuant.quadraticForms(cb, 3, k, h, 12, 10, norms, 1);
        double[] a = doubles(9, rnd), out = new double[k];
        int best = AdditiveQuant.scores(cb, 3, k, norms, 1, 0.7, a, 1, out, 0);
        double min = Double.POSITIVE_INFINITY;
        int arg = -1;
        for (int j = 0; j < k; j++) {
            double q = 0, dot = 0;
            for (int i = 0; i < 8; i++) {
                dot += a[1 + i] * cb[3 + j * 8 + i];
                for (int l = 0; l < 8; l++) q += cb[3 + j * 8 + i] * h[12 + i * 10 + l] * cb[3 + j * 8 + l];
            }
            assertEquals(q, norms[1 + j], 1e-12 * (1 + Math.abs(q)));
            double sc = 0.7 * q - 2 * dot;
            assertEquals(sc, out[j], 1e-12 * (1 + Math.abs(sc)));
            if (sc < min) {
                min = sc;
                arg = j;
            }
        }
        assertEquals(arg, best);

        double[] t = doubles(20, rnd), lin = new double[8];
        AdditiveQuant.linearTerm(h, 12, 10, cb, 3 + 8, 1.5, t, 4, -0.5, lin);
        for (int i = 0; i < 8; i++) {
            double hu = 0;
            for (int l = 0; l < 8; l++) hu += h[12 + i * 10 + l] * cb[11 + l];
            assertEquals(1.5 * hu - 0.5 * t[4 + i], lin[i], 1e-12);
        }
    }

    @Test
    void kmeansHelpersMatchTheDefinition() {
        Random rnd = new Random(3);
        int n = 37, k = 6;
        double[] x = doubles(n * 8, rnd), cb = doubles(2 + k * 8, rnd), norms = new double[k];
        for (int j = 0; j < k; j++) for (int i = 0; i < 8; i++) norms[j] += cb[2 + j * 8 + i] * cb[2 + j * 8 + i];
        int[] assign = new int[n];
        java.util.Arrays.fill(assign, -1);
        assertEquals(n - 5, AdditiveQuant.assignNearest(x, 5, n, cb, 2, k, norms, assign));
        for (int p = 5; p < n; p++) {
            int arg = 0;
            double best = Double.POSITIVE_INFINITY;
            for (int j = 0; j < k; j++) {
                double d = 0;
                for (int i = 0; i < 8; i++) d += Math.pow(x[p * 8 + i] - cb[2 + j * 8 + i], 2);
                if (d < best) {
                    best = d;
                    arg = j;
                }
            }
            assertEquals(arg, assign[p], "point " + p);
        }
        for (int p = 0; p < 5; p++) assign[p] = p % k;
        double[] sums = new double[k * 8];
        int[] counts = new int[k];
        AdditiveQuant.clusterSums(x, n, assign, sums, counts);
        double[] want = new double[k * 8];
        int[] wantCounts = new int[k];
        for (int p = 0; p < n; p++) {
            wantCounts[assign[p]]++;
            for (int i = 0; i < 8; i++) want[assign[p] * 8 + i] += x[p * 8 + i];
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(wantCounts, counts);
        org.junit.jupiter.api.Assertions.assertArrayEquals(want, sums, 1e-12);
        double[] res = x.clone();
        AdditiveQuant.subtractAssigned(res, n, assign, cb, 2);
        for (int p = 0; p < n; p++)
            for (int i = 0; i < 8; i++) assertEquals(x[p * 8 + i] - cb[2 + assign[p] * 8 + i], res[p * 8 + i], 0);
    }

    @Test
    void gramAndRhsBlocksMatchPTransposeHP() {
        // One row: entries (unknown block, group); A += w P^T H P on the lower triangle, b += w P^T y.
        Random rnd = new Random(4);
        int groups = 3, cp = groups * 8, units = 5, n = units * 8;
        double[] h = doubles(cp * cp, rnd);
        for (int i = 0; i < cp; i++) for (int j = 0; j < i; j++) h[i * cp + j] = h[j * cp + i]; // symmetric
        int[] unk = {3, 1, 3, 0, 4, 1}; // codeword 3 used twice, 1 twice
        int[] grp = {0, 0, 1, 1, 2, 2};
        double[] a = new double[n * n], b = new double[n];
        double[] y = doubles(cp + 2, rnd);
        int[] rows = {7, 7, 3, 1, 3, 0, 4, 1}; // the row's entries from offset 2, as in a [rows, entries] array
        for (int e = 0; e < unk.length; e++) AdditiveQuant.addGramStrip(a, n, unk[e], grp[e], rows, 2, grp, unk.length, h, cp, 0.3);
        AdditiveQuant.addRhsBlocks(b, rows, 2, grp, unk.length, y, 2, 0.3);
        double[] p = new double[cp * n]; // P [cp, n]: P[8 g + i][8 u + i] = 1 per entry
        for (int e = 0; e < unk.length; e++) for (int i = 0; i < 8; i++) p[(grp[e] * 8 + i) * n + unk[e] * 8 + i] += 1;
        for (int r = 0; r < n; r++) {
            double bw = 0;
            for (int i = 0; i < cp; i++) bw += 0.3 * p[i * n + r] * y[2 + i];
            assertEquals(bw, b[r], 1e-12);
            for (int c = 0; c <= r; c++) {
                double v = 0;
                for (int i = 0; i < cp; i++) for (int j = 0; j < cp; j++) v += p[i * n + r] * h[i * cp + j] * p[j * n + c];
                assertEquals(0.3 * v, a[r * n + c], 1e-12, "A[" + r + "][" + c + "]");
            }
        }
    }
}
