package casp.kernel;

import static casp.kernel.LinalgTestUtil.assertBelow;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class RandomizedSvdTest {

    /** ||A - U S Vt||_F^2 in double. */
    static double tailEnergy(double[] a, RandomizedSvd.Result r) {
        int m = r.m, n = r.n, k = r.rank;
        double[] us = LinalgTestUtil.toDouble(r.u);
        for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] *= r.s[j];
        double[] rec = LinalgTestUtil.mul(us, false, LinalgTestUtil.toDouble(r.vt), false, m, n, k);
        double e = 0;
        for (int i = 0; i < a.length; i++) e += (a[i] - rec[i]) * (a[i] - rec[i]);
        return e;
    }

    static void checkNearOptimal(int m, int n, double[] spectrum, int rank, int p, int q, double factor, long seed) {
        double[] a = LinalgTestUtil.withSpectrum(m, n, spectrum, seed);
        // Optimal tail from the exact SVD of A (not from the construction, so the oracle is independent).
        DenseSvd.Result exact = DenseSvd.decompose(a, m, n);
        double optimal = 0;
        for (int i = rank; i < exact.k; i++) optimal += exact.s[i] * exact.s[i];
        RandomizedSvd.Result r = RandomizedSvd.compute(LinalgTestUtil.toFloat(a), m, n, rank, p, q, seed);
        double tail = tailEnergy(a, r);
        String what = m + "x" + n + " rank " + rank + " q " + q;
        assertBelow(tail, factor * optimal, what + " tail energy vs optimal " + optimal);
        for (int i = 0; i < rank; i++) assertEquals(exact.s[i], r.s[i], 1e-3 * exact.s[0] + 0.02 * exact.s[i], what + " sigma " + i);
        assertBelow(LinalgTestUtil.orthonormalityError(LinalgTestUtil.toDouble(r.u), m, rank), 1e-4, what + " U orthonormal");
        double[] v = new double[n * rank];
        for (int i = 0; i < rank; i++) for (int j = 0; j < n; j++) v[j * rank + i] = r.vt[i * n + j];
        assertBelow(LinalgTestUtil.orthonormalityError(v, n, rank), 1e-3, what + " V orthonormal");
    }

    static double[] decaying(int k, double base, double floor) {
        double[] s = new double[k];
        for (int i = 0; i < k; i++) s[i] = Math.pow(base, i) + floor;
        return s;
    }

    @Test
    void tailEnergyWithinAFewPercentOfOptimal() {
        // Geometric decay on top of a flat noise floor: the hard case for sketches without power iterations.
        checkNearOptimal(300, 200, decaying(200, 0.9, 0.01), 20, 10, 2, 1.03, 1);
        checkNearOptimal(200, 300, decaying(200, 0.95, 0.02), 40, 16, 2, 1.03, 2);
        checkNearOptimal(129, 129, decaying(129, 0.8, 0.001), 17, 10, 3, 1.03, 3);
    }

    @Test
    void powerIterationsImproveASlowlyDecayingSpectrum() {
        int m = 200, n = 150, rank = 10;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = 1.0 / Math.sqrt(i + 1);
        double[] a = LinalgTestUtil.withSpectrum(m, n, s, 4);
        double optimal = 0;
        for (int i = rank; i < n; i++) optimal += s[i] * s[i];
        double e0 = tailEnergy(a, RandomizedSvd.compute(LinalgTestUtil.toFloat(a), m, n, rank, 5, 0, 4));
        double e3 = tailEnergy(a, RandomizedSvd.compute(LinalgTestUtil.toFloat(a), m, n, rank, 5, 3, 4));
        assertBelow(e3, e0, "q=3 better than q=0");
        assertBelow(e3, 1.05 * optimal, "q=3 near optimal");
    }

    @Test
    void exactLowRankAndFullWidthCases() {
        // Rank-5 matrix: rank-5 approximation is exact; the sample (5 + 8 columns) is rank deficient.
        int m = 40, n = 30;
        double[] a = LinalgTestUtil.withSpectrum(m, n, new double[] {5, 4, 3, 2, 1}, 6);
        RandomizedSvd.Result r = RandomizedSvd.compute(LinalgTestUtil.toFloat(a), m, n, 5, 8, 1, 6);
        assertBelow(tailEnergy(a, r), 1e-8 * 55, "rank 5 exact");
        // rank + oversample beyond min(m, n) is clamped; rank = min(m, n) reconstructs A.
        double[] g = LinalgTestUtil.gaussian(7, 17, 7);
        RandomizedSvd.Result f = RandomizedSvd.compute(LinalgTestUtil.toFloat(g), 7, 17, 7, 10, 2, 7);
        assertBelow(tailEnergy(g, f), 1e-8 * LinalgTestUtil.frobenius(g) * LinalgTestUtil.frobenius(g), "full rank exact");
        RandomizedSvd.Result one = RandomizedSvd.compute(new float[] {3f}, 1, 1, 1, 5, 2, 1);
        assertEquals(3f, one.s[0], 1e-6f);
        assertEquals(3f, one.u[0] * one.s[0] * one.vt[0], 1e-6f);
    }

    @Test
    void sameSeedSameResult() {
        float[] a = LinalgTestUtil.toFloat(LinalgTestUtil.gaussian(90, 70, 8));
        RandomizedSvd.Result r1 = RandomizedSvd.compute(a, 90, 70, 10, 5, 2, 123);
        RandomizedSvd.Result r2 = RandomizedSvd.compute(a, 90, 70, 10, 5, 2, 123);
        assertArrayEquals(r1.s, r2.s);
        assertArrayEquals(r1.u, r2.u);
        assertArrayEquals(r1.vt, r2.vt);
    }

    @Test
    void rejectsBadArguments() {
        float[] a = new float[12];
        assertThrows(IllegalArgumentException.class, () -> RandomizedSvd.compute(a, 3, 4, 0, 5, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> RandomizedSvd.compute(a, 3, 4, 4, 5, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> RandomizedSvd.compute(a, 3, 4, 2, -1, 2, 1));
    }
}
