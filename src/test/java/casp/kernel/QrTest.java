package casp.kernel;

import static casp.kernel.LinalgTestUtil.assertBelow;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class QrTest {

    @Test
    void householderFactorsTallMatrices() {
        int[][] shapes = {{1, 1}, {7, 1}, {7, 7}, {17, 7}, {33, 17}, {129, 33}, {300, 100}, {2000, 100}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1];
            double[] a = LinalgTestUtil.gaussian(m, n, m + 1000L * n);
            double[] q = a.clone();
            double[] r = new double[n * n];
            Qr.householder(q, m, n, r);
            for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) assertEquals(0, r[i * n + j], "R lower part");
            double[] qr = LinalgTestUtil.mul(q, false, r, false, m, n, n);
            assertBelow(LinalgTestUtil.maxAbsDiff(qr, a), 1e-13 * m, m + "x" + n + " Q R = A");
            assertBelow(LinalgTestUtil.orthonormalityError(q, m, n), 1e-13 * m, m + "x" + n + " Q^T Q = I");
        }
    }

    /** Q orthonormal and spanning the columns of a, with span(first k) kept (R upper triangular). */
    static void checkOrthonormalBasis(float[] a, float[] q, int m, int n, double tol, String what) {
        double[] qd = LinalgTestUtil.toDouble(q), ad = LinalgTestUtil.toDouble(a);
        assertBelow(LinalgTestUtil.orthonormalityError(qd, m, n), tol, what + " orthonormal");
        // R = Q^T A must be upper triangular and Q R must give A back.
        double[] r = LinalgTestUtil.mul(qd, true, ad, false, n, n, m);
        double scale = LinalgTestUtil.frobenius(ad);
        for (int i = 0; i < n; i++) for (int j = 0; j < i; j++) assertBelow(Math.abs(r[i * n + j]) / scale, tol, what + " R upper");
        double[] qr = LinalgTestUtil.mul(qd, false, r, false, m, n, n);
        assertBelow(LinalgTestUtil.maxAbsDiff(qr, ad) / scale, tol, what + " span");
    }

    @Test
    void choleskyQr2OrthonormalisesFloatPanels() {
        int[][] shapes = {{1, 1}, {7, 3}, {17, 17}, {33, 7}, {129, 33}, {1000, 40}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1];
            float[] a = LinalgTestUtil.toFloat(LinalgTestUtil.gaussian(m, n, 5L * m + n));
            float[] q = a.clone();
            long before = Qr.fallbackCount();
            Qr.orthonormalize(q, m, n);
            if (m >= 3 * n) assertEquals(before, Qr.fallbackCount(), "well-conditioned " + m + "x" + n + " takes the CholeskyQR2 path");
            checkOrthonormalBasis(a, q, m, n, 2e-5, m + "x" + n);
        }
    }

    @Test
    void illConditionedAndRankDeficientPanelsFallBack() {
        int m = 200, n = 20;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = Math.pow(10, -i * 0.4); // cond 10^7.6
        float[] a = LinalgTestUtil.toFloat(LinalgTestUtil.withSpectrum(m, n, s, 1));
        float[] q = a.clone();
        long before = Qr.fallbackCount();
        Qr.orthonormalize(q, m, n);
        assertEquals(before + 1, Qr.fallbackCount());
        assertBelow(LinalgTestUtil.orthonormalityError(LinalgTestUtil.toDouble(q), m, n), 1e-6, "ill-conditioned orthonormal");

        float[] z = LinalgTestUtil.toFloat(LinalgTestUtil.withSpectrum(m, n, new double[] {1, 1, 1}, 2));
        Qr.orthonormalize(z, m, n);
        assertBelow(LinalgTestUtil.orthonormalityError(LinalgTestUtil.toDouble(z), m, n), 1e-6, "rank 3 orthonormal");
    }
}
