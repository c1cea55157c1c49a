package casp.quant.lowrank;

import casp.kernel.DenseSvd;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

public class LowRankQKTest {

    /** Calibration inputs with correlated, unevenly scaled features: X = Z diag(d) M, [tokens, n]. */
    public static float[] inputs(int tokens, int n, long seed) {
        Random r = new Random(seed);
        double[] mix = new double[n * n];
        for (int i = 0; i < mix.length; i++) mix[i] = r.nextGaussian() / Math.sqrt(n);
        for (int i = 0; i < n; i++) mix[i * n + i] += 1;
        float[] x = new float[tokens * n];
        double[] z = new double[n];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) z[i] = r.nextGaussian() * Math.exp(-3.0 * i / n) * (i % 7 == 0 ? 5 : 1);
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int i = 0; i < n; i++) s += z[i] * mix[i * n + j];
                x[t * n + j] = (float) s;
            }
        }
        return x;
    }

    public static float[] weight(int m, int n, long seed) {
        Random r = new Random(seed);
        float[] w = new float[m * n];
        // A decaying spectrum plus noise, like a trained projection.
        int k = Math.min(m, n);
        double[] u = new double[m], v = new double[n];
        for (int p = 0; p < k; p++) {
            for (int i = 0; i < m; i++) u[i] = r.nextGaussian();
            for (int j = 0; j < n; j++) v[j] = r.nextGaussian();
            double s = Math.pow(0.93, p) / Math.sqrt(m * n);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) w[i * n + j] += (float) (s * u[i] * v[j]);
        }
        return w;
    }

    /** G = X^T X, naive float64. */
    public static double[] gram(float[] x, int tokens, int n) {
        double[] g = new double[n * n];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                double xi = x[t * n + i];
                for (int j = 0; j < n; j++) g[i * n + j] += xi * x[t * n + j];
            }
        }
        return g;
    }

    /** ||(W - W') X^T||_F^2, naive float64 over the tokens. */
    public static double measured(float[] w, float[] wp, int m, int n, float[] x, int tokens) {
        double e = 0;
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int j = 0; j < n; j++) s += ((double) w[i * n + j] - wp[i * n + j]) * x[t * n + j];
                e += s * s;
            }
        }
        return e;
    }

    static void checkLossIdentity(int m, int n, int tokens, LowRankQK.Options opt, int maxRank, int[] ranks, boolean expectExact) {
        float[] x = inputs(tokens, n, 11 + m);
        float[] w = weight(m, n, 23 + n);
        double[] g = gram(x, tokens, n);
        LowRankQK.Decomposition d = LowRankQK.decompose(w, m, n, g, maxRank, opt);
        assertEquals(expectExact, d.exact);
        assertEquals(0, d.whitening.damping, "G is positive definite here");
        assertEquals(measured(w, new float[m * n], m, n, x, tokens), d.truncationLoss(0), 1e-6 * d.totalEnergy, "rank 0 = ||W X^T||^2");
        for (int r : ranks) {
            LowRankQK.Factors f = d.factors(r);
            double want = measured(w, f.product(), m, n, x, tokens);
            double got = d.truncationLoss(r);
            assertEquals(want, got, 1e-4 * want, m + "x" + n + " rank " + r + (d.exact ? " exact" : " randomized"));
            assertTrue(got > 1e-4 * d.totalEnergy, "the case must not be trivially lossless");
        }
    }

    @Test
    void truncationLossFromSingularValuesEqualsMeasuredErrorExactSvd() {
        checkLossIdentity(24, 40, 300, LowRankQK.Options.defaults(), 40, new int[]{1, 5, 10, 16}, true);
        checkLossIdentity(33, 17, 100, LowRankQK.Options.defaults(), 17, new int[]{2, 4, 10}, true);
    }

    @Test
    void truncationLossFromSingularValuesEqualsMeasuredErrorRandomizedSvd() {
        // min(m, n) = 130 > exactMaxDim 64: randomized SVD.
        checkLossIdentity(130, 150, 400, LowRankQK.Options.defaults().withExactMaxDim(64), 40, new int[]{8, 25, 40}, false);
    }

    @Test
    void randomizedLossIsNearTheExactOptimum() {
        int m = 120, n = 140, tokens = 400;
        float[] x = inputs(tokens, n, 5);
        float[] w = weight(m, n, 6);
        double[] g = gram(x, tokens, n);
        LowRankQK.Decomposition exact = LowRankQK.decompose(w, m, n, g, 30, LowRankQK.Options.defaults());
        LowRankQK.Decomposition rsvd = LowRankQK.decompose(w, m, n, g, 30, LowRankQK.Options.defaults().withExactMaxDim(0));
        assertTrue(exact.exact && !rsvd.exact);
        for (int r : new int[]{5, 15, 30}) {
            double opt = exact.truncationLoss(r), got = rsvd.truncationLoss(r);
            assertTrue(got >= opt * (1 - 1e-6), "randomized cannot beat the optimum: " + got + " < " + opt);
            assertTrue(got <= opt * 1.02, "rank " + r + ": randomized " + got + " vs optimal " + opt);
        }
    }

    @Test
    void whiteningBeatsPlainSvdOnTheCalibrationInputs() {
        int m = 40, n = 48, tokens = 300, r = 8;
        float[] x = inputs(tokens, n, 9);
        float[] w = weight(m, n, 10);
        LowRankQK.Decomposition d = LowRankQK.decompose(w, m, n, gram(x, tokens, n), r, LowRankQK.Options.defaults());
        double whitened = measured(w, d.factors(r).product(), m, n, x, tokens);
        // Plain truncated SVD of W (what one does without data).
        double[] wd = LowRankQK.toDouble(w);
        DenseSvd.Result s = DenseSvd.decompose(wd, m, n);
        float[] plain = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double v = 0;
                for (int p = 0; p < r; p++) v += s.u[i * s.k + p] * s.s[p] * s.vt[p * n + j];
                plain[i * n + j] = (float) v;
            }
        double naive = measured(w, plain, m, n, x, tokens);
        assertTrue(whitened < 0.8 * naive, "whitened " + whitened + " vs plain SVD " + naive);
    }

    @Test
    void singularStatisticsAreDampedAndReported() {
        int m = 16, n = 24, tokens = 10; // fewer tokens than inputs: G has rank 10
        float[] x = inputs(tokens, n, 3);
        for (int t = 0; t < tokens; t++) x[t * n + 5] = 0; // and a dead input
        double[] g = gram(x, tokens, n);
        LowRankQK.Decomposition d = LowRankQK.decompose(weight(m, n, 4), m, n, g, 8, LowRankQK.Options.defaults());
        assertTrue(d.whitening.damping > 0 && d.whitening.attempts >= 2);
        assertTrue(d.whitening.relativeDamping < 1e-3, "damping " + d.whitening.relativeDamping);
        LowRankQK.Factors f = d.factors(8);
        for (float v : f.a()) assertTrue(Float.isFinite(v));
        for (float v : f.b()) assertTrue(Float.isFinite(v));
    }

    @Test
    void rotationKeepsTheProductAndMixesTheRankDimension() {
        int m = 20, n = 30, tokens = 100;
        float[] x = inputs(tokens, n, 1);
        LowRankQK.Decomposition d = LowRankQK.decompose(weight(m, n, 2), m, n, gram(x, tokens, n), 6, LowRankQK.Options.defaults());
        LowRankQK.Factors f = d.factors(6), r = f.rotated(42);
        float[] p0 = f.product(), p1 = r.product();
        double scale = 0;
        for (float v : p0) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < p0.length; i++) assertEquals(p0[i], p1[i], 1e-5 * scale);
        double[] q = LowRankQK.randomOrthogonal(6, 42);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                double s = 0;
                for (int k = 0; k < 6; k++) s += q[k * 6 + i] * q[k * 6 + j];
                assertEquals(i == j ? 1 : 0, s, 1e-12);
            }
        // B G B^T = S_r before rotation (diagonal), not after.
        double[] g = gram(x, tokens, n);
        assertTrue(offDiagonalShare(f.b(), 6, n, g) < 1e-4);
        assertTrue(offDiagonalShare(r.b(), 6, n, g) > 1e-2);
    }

    /** Off-diagonal Frobenius share of B G B^T. */
    static double offDiagonalShare(float[] b, int r, int n, double[] g) {
        double off = 0, all = 0;
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                double s = 0;
                for (int p = 0; p < n; p++) for (int q = 0; q < n; q++) s += b[i * n + p] * g[p * n + q] * b[j * n + q];
                all += s * s;
                if (i != j) off += s * s;
            }
        return off / all;
    }

    @Test
    void rankRules() {
        assertEquals(512, LowRankQK.rankForRatio(4096, 4096, 0.25));
        assertEquals(640, LowRankQK.rankForRatio(5120, 5120, 0.25));
        assertEquals(8, LowRankQK.rankForRatio(64, 64, 0.25));
        assertEquals(5, LowRankQK.rankForRatio(32, 64, 0.25)); // 32*64/4/96 = 5.33
        int m = 30, n = 36, tokens = 120;
        float[] x = inputs(tokens, n, 7);
        LowRankQK.Decomposition d = LowRankQK.decompose(weight(m, n, 8), m, n, gram(x, tokens, n), 30, LowRankQK.Options.defaults());
        for (double th : new double[]{0.5, 0.1, 0.01}) {
            int r = LowRankQK.rankForThreshold(d, th);
            assertTrue(d.relativeLoss(r) <= th);
            assertTrue(r == 1 || d.relativeLoss(r - 1) > th, "smallest such rank");
        }
    }

    @Test
    void budgetSplitMatchesBruteForce() {
        Random rnd = new Random(17), weightRnd = new Random(71);
        for (int trial = 0; trial < 20; trial++) {
            int layers = 2 + rnd.nextInt(3), m = 6 + rnd.nextInt(4), n = 8;
            List<LowRankQK.Decomposition> ds = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                int tokens = 40;
                float[] x = inputs(tokens, n, 100 + trial * 10 + l);
                float[] w = weight(m, n, 200 + trial * 10 + l);
                for (int i = 0; i < w.length; i++) w[i] *= (float) Math.exp(rnd.nextGaussian());
                ds.add(LowRankQK.decompose(w, m, n, gram(x, tokens, n), m, LowRankQK.Options.defaults()));
            }
            int total = layers + rnd.nextInt(layers * (m - 1));
            double[] ones = new double[layers], weights = new double[layers];
            java.util.Arrays.fill(ones, 1);
            for (int l = 0; l < layers; l++) weights[l] = trial % 5 == 0 && l == 0 ? 0 : weightRnd.nextDouble() * 3; // a zero weight too
            for (double[] wt : new double[][]{null, weights}) {
                int[] got = wt == null ? LowRankQK.splitRankBudget(ds, total, 1) : LowRankQK.splitRankBudget(ds, total, 1, wt);
                double[] w = wt == null ? ones : wt;
                int sum = 0;
                double loss = 0;
                for (int l = 0; l < layers; l++) {
                    sum += got[l];
                    loss += w[l] * ds.get(l).truncationLoss(got[l]);
                }
                assertEquals(total, sum);
                double best = brute(ds, w, 0, total, 1);
                assertEquals(best, loss, 1e-9 * Math.max(best, 1e-30), "trial " + trial);
            }
        }
    }

    private static double brute(List<LowRankQK.Decomposition> ds, double[] weight, int l, int left, int min) {
        if (l == ds.size()) return left == 0 ? 0 : Double.POSITIVE_INFINITY;
        double best = Double.POSITIVE_INFINITY;
        for (int r = min; r <= Math.min(left, ds.get(l).knownRanks()); r++) {
            best = Math.min(best, weight[l] * ds.get(l).truncationLoss(r) + brute(ds, weight, l + 1, left - r, min));
        }
        return best;
    }

    @Test
    void factorShapes() {
        int m = 12, n = 20;
        float[] x = inputs(50, n, 1);
        LowRankQK.Factors f = LowRankQK.decompose(weight(m, n, 1), m, n, gram(x, 50, n), 4, LowRankQK.Options.defaults()).factors(3);
        assertEquals(3 * (m + n), f.parameters());
        assertArrayEquals(new int[]{m * 3, 3 * n}, new int[]{f.a().length, f.b().length});
    }
}
