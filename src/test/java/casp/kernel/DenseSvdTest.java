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

    /**
     * {@link #check} plus the orthogonality the Jacobi refinement promises: |u_i . u_j| <= m eps
     * (A V / S alone, without the refinement, misses this by orders of magnitude already at n = 129).
     */
    static void checkStrict(double[] a, int m, int n, DenseSvd.Result r, String what) {
        check(a, m, n, r, what);
        assertBelow(LinalgTestUtil.orthonormalityError(r.u, m, r.k), 1e-15 * Math.max(m, n), what + " U orthonormal (strict)");
    }

    /** DenseSvd against the naive Jacobi oracle (singular values) plus the factor checks. */
    static DenseSvd.Result checkAgainstOracle(double[] a, int m, int n, String what) {
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        checkStrict(a, m, n, r, what);
        double[] ref = LinalgTestUtil.jacobiSingularValues(a, m, n);
        for (int i = 0; i < r.k; i++) assertEquals(ref[i], r.s[i], 1e-13 * Math.max(m, n) * ref[0], what + " sigma " + i);
        return r;
    }

    @Test
    void squareSizesAgainstJacobiOracle() {
        for (int n : new int[] {1, 2, 7, 17, 33, 129}) {
            checkAgainstOracle(LinalgTestUtil.gaussian(n, n, 1000L + n), n, n, "n=" + n);
        }
    }

    @Test
    void rectangularAgainstJacobiOracle() {
        int[][] shapes = {{2, 1}, {1, 2}, {200, 65}, {65, 200}, {150, 129}, {129, 150}};
        for (int[] s : shapes) {
            checkAgainstOracle(LinalgTestUtil.gaussian(s[0], s[1], 7L * s[0] + s[1]), s[0], s[1], s[0] + "x" + s[1]);
        }
    }

    @Test
    void rankDeficientAtSeveralLevelsOfTheDivideAndConquer() {
        int m = 150, n = 129;
        double[] spectrum = {7, 6, 5, 4, 3, 2, 1};
        double[] a = LinalgTestUtil.withSpectrum(m, n, spectrum, 21);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        checkStrict(a, m, n, r, "rank 7");
        for (int i = 0; i < spectrum.length; i++) assertEquals(spectrum[i], r.s[i], 1e-12, "sigma " + i);
        for (int i = spectrum.length; i < r.k; i++) assertBelow(r.s[i], 1e-12, "null sigma " + i);
        // Exactly repeated and zero columns (structural rank deficiency), wide orientation.
        double[] b = LinalgTestUtil.gaussian(40, 35, 22);
        for (int i = 0; i < 40; i++) {
            b[i * 35 + 3] = b[i * 35 + 9];
            b[i * 35 + 20] = 0;
            b[i * 35 + 30] = 2 * b[i * 35 + 9];
        }
        double[] bt = DecompUtil.transpose(b, 40, 35);
        DenseSvd.Result rb = checkAgainstOracle(bt, 35, 40, "structural rank 32");
        for (int i = 32; i < 35; i++) assertBelow(rb.s[i], 1e-12 * rb.s[0], "null sigma " + i);
    }

    @Test
    void repeatedSingularValues() {
        int m = 140, n = 129;
        double[] spectrum = new double[n];
        for (int i = 0; i < n; i++) spectrum[i] = i < 40 ? 3 : i < 80 ? 1 : 0.25;
        double[] a = LinalgTestUtil.withSpectrum(m, n, spectrum, 31);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        checkStrict(a, m, n, r, "repeated");
        for (int i = 0; i < n; i++) assertEquals(spectrum[i], r.s[i], 1e-12, "sigma " + i);
    }

    @Test
    void widelyGradedSpectrumKeepsSmallSingularValues() {
        // Twelve decades: A^T A cannot resolve the bottom half; the Jacobi refinement must.
        int m = 200, n = 150;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = Math.pow(10, -12.0 * i / (n - 1));
        double[] a = LinalgTestUtil.withSpectrum(m, n, s, 41);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        checkStrict(a, m, n, r, "graded 1e-12");
        for (int i = 0; i < n; i++) assertEquals(s[i], r.s[i], 1e-13 + 1e-6 * s[i], "sigma " + i);
    }

    @Test
    void scaleDoesNotMatter() {
        int m = 45, n = 40;
        double[] a = LinalgTestUtil.gaussian(m, n, 51);
        DenseSvd.Result r = DenseSvd.decompose(a, m, n);
        for (double f : new double[] {1e-160, 1e160}) {
            double[] b = a.clone();
            for (int i = 0; i < b.length; i++) b[i] *= f;
            DenseSvd.Result rb = DenseSvd.decompose(b, m, n);
            checkStrict(b, m, n, rb, "scaled " + f);
            for (int i = 0; i < n; i++) assertEquals(r.s[i], rb.s[i] / f, 1e-12 * r.s[0], "sigma " + i + " at scale " + f);
        }
    }

    @Test
    void rejectsNonFinite() {
        double[] a = {1, 2, Double.NaN, 4};
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> DenseSvd.decompose(a, 2, 2));
    }
}
