package casp.kernel;

import static casp.kernel.LinalgTestUtil.assertBelow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class DenseSvdTest {

    static void check(double[] a, int m, int n, DenseSvd.Result r, String what) {
        int k = Math.min(m, n);
        assertEquals(k, r.k);
        double scale = Math.max(1e-300, LinalgTestUtil.frobenius(a));
        double[] us = r.u.clone();
        for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] *= r.s[j];
        double[] rec = LinalgTestUtil.mul(us, false, r.vt, false, m, n, k);
        assertBelow(LinalgTestUtil.maxAbsDiff(rec, a) / scale, 1e-13 * Math.max(m, n), what + " reconstruction");
        assertBelow(LinalgTestUtil.orthonormalityError(r.u, m, k), 1e-12 * Math.max(m, n), what + " U orthonormal");
        double[] vtT = new double[n * k];
        for (int i = 0; i < k; i++) for (int j = 0; j < n; j++) vtT[j * k + i] = r.vt[i * n + j];
        assertBelow(LinalgTestUtil.orthonormalityError(vtT, n, k), 1e-12 * Math.max(m, n), what + " V orthonormal");
        for (int j = 0; j < k; j++) assertTrue(r.s[j] >= 0 && (j == 0 || r.s[j - 1] >= r.s[j]), what + " sorted");
    }

    @Test
    void randomMatricesAtAwkwardShapes() {
        int[][] shapes = {{1, 1}, {7, 3}, {3, 7}, {17, 17}, {33, 17}, {17, 33}, {129, 33}, {33, 129}, {100, 1}, {1, 100}};
        for (int[] s : shapes) {
            double[] a = LinalgTestUtil.gaussian(s[0], s[1], s[0] * 131L + s[1]);
            check(a, s[0], s[1], DenseSvd.decompose(a, s[0], s[1]), s[0] + "x" + s[1]);
        }
    }

    @Test
    void recoversAKnownSpectrumToHighRelativeAccuracy() {
        int m = 60, n = 40;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = Math.pow(10, -i / 4.0); // 1 down to 1e-9.75
        double[] a = LinalgTestUtil.withSpectrum(m, n, s, 3);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        check(a, m, n, r, "graded");
        for (int i = 0; i < n; i++) assertEquals(s[i], r.s[i], 1e-12 + 1e-6 * s[i], "sigma " + i);
    }

    @Test
    void singularValuesMatchTheEigenvaluesOfTheGram() {
        int m = 50, n = 30;
        double[] a = LinalgTestUtil.gaussian(m, n, 77);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        SymmetricEigen.Result e = SymmetricEigen.decompose(LinalgTestUtil.mul(a, true, a, false, n, n, m), n);
        for (int i = 0; i < n; i++) assertEquals(Math.sqrt(e.values[i]), r.s[i], 1e-10 * r.s[0]);
    }

    @Test
    void rankDeficientKeepsOrthonormalFactors() {
        int m = 20, n = 12;
        double[] a = LinalgTestUtil.withSpectrum(m, n, new double[] {3, 2, 1}, 9);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        check(a, m, n, r, "rank 3");
        for (int i = 3; i < n; i++) assertBelow(r.s[i], 1e-13, "null sigma " + i);
        double[] z = new double[m * n];
        check(z, m, n, DenseSvd.decompose(z, m, n), "zero");
    }
}
