package casp.kernel;

import static casp.kernel.LinalgTestUtil.assertBelow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SymmetricEigenTest {

    static double[] randomSymmetric(int n, long seed) {
        double[] g = LinalgTestUtil.gaussian(n, n, seed);
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) a[i * n + j] = g[i * n + j] + g[j * n + i];
        return a;
    }

    static void check(double[] a, int n, SymmetricEigen.Result r, String what) {
        double scale = Math.max(1e-300, LinalgTestUtil.frobenius(a));
        // A V = V diag(w)
        double[] av = LinalgTestUtil.mul(a, false, r.vectors, false, n, n, n);
        double res = 0;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) res = Math.max(res, Math.abs(av[i * n + j] - r.vectors[i * n + j] * r.values[j]));
        assertBelow(res / scale, 1e-12 * Math.max(1, n), what + " residual");
        assertBelow(LinalgTestUtil.orthonormalityError(r.vectors, n, n), 1e-12 * Math.max(1, n), what + " orthogonality");
        for (int j = 1; j < n; j++) assertTrue(r.values[j - 1] >= r.values[j], what + " descending");
        double trace = 0, sum = 0;
        for (int i = 0; i < n; i++) {
            trace += a[i * n + i];
            sum += r.values[i];
        }
        assertEquals(trace, sum, 1e-10 * scale * n, what + " trace");
    }

    @Test
    void randomSymmetricAtAwkwardSizes() {
        for (int n : new int[] {1, 2, 3, 7, 17, 33, 129}) {
            double[] a = randomSymmetric(n, n);
            check(a, n, SymmetricEigen.decompose(a, n), "n=" + n);
        }
    }

    @Test
    void knownSpectrumWithRepeatsAndZeros() {
        int n = 40;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = i < 10 ? 5 : i < 20 ? 0 : -3 + 1e-9 * i;
        double[] q = LinalgTestUtil.randomOrthonormal(n, n, 11);
        double[] qs = q.clone();
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) qs[i * n + j] *= s[j];
        double[] a = LinalgTestUtil.mul(qs, false, q, true, n, n, n);
        SymmetricEigen.Result r = SymmetricEigen.decompose(a, n);
        check(a, n, r, "repeated");
        java.util.Arrays.sort(s);
        for (int i = 0; i < n; i++) assertEquals(s[n - 1 - i], r.values[i], 1e-12 * 5 * n);
    }

    @Test
    void diagonalAndTridiagonalInputs() {
        int n = 9;
        double[] d = new double[n * n];
        for (int i = 0; i < n; i++) d[i * n + i] = i - 4;
        check(d, n, SymmetricEigen.decompose(d, n), "diagonal");
        double[] t = new double[n * n];
        for (int i = 0; i < n; i++) {
            t[i * n + i] = 2;
            if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = -1;
        }
        SymmetricEigen.Result r = SymmetricEigen.decompose(t, n);
        check(t, n, r, "tridiagonal");
        // Eigenvalues of the 1-D Laplacian: 2 - 2 cos(k pi / (n + 1)).
        for (int k = 1; k <= n; k++) assertEquals(2 - 2 * Math.cos(k * Math.PI / (n + 1)), r.values[n - k], 1e-13);
    }

    @Test
    void largerMatrixStaysAccurate() {
        int n = 300;
        double[] a = randomSymmetric(n, 5);
        check(a, n, SymmetricEigen.decompose(a, n), "n=300");
    }

    @Test
    void rejectsNonFinite() {
        double[] a = {1, 0, Double.NaN, 1};
        assertThrows(IllegalArgumentException.class, () -> SymmetricEigen.decompose(a, 2));
    }

    @Test
    void clusteredSpectrumThroughSeveralMergeLevels() {
        // Clusters and exact repeats deflate in the divide and conquer; negative values too.
        int n = 260;
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = i < 60 ? 4 : i < 120 ? -2 + 1e-10 * i : i < 200 ? 0 : Math.sin(i);
        double[] q = LinalgTestUtil.randomOrthonormal(n, n, 13);
        double[] qs = q.clone();
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) qs[i * n + j] *= s[j];
        double[] a = LinalgTestUtil.mul(qs, false, q, true, n, n, n);
        SymmetricEigen.Result r = SymmetricEigen.decompose(a, n);
        check(a, n, r, "clustered n=260");
        double[] sorted = s.clone();
        java.util.Arrays.sort(sorted);
        for (int i = 0; i < n; i++) assertEquals(sorted[n - 1 - i], r.values[i], 1e-12 * n);
    }

    @Test
    void upperTriangleIsIgnored() {
        int n = 70;
        double[] a = randomSymmetric(n, 17);
        double[] b = a.clone();
        for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) b[i * n + j] = 1e300;
        SymmetricEigen.Result ra = SymmetricEigen.decompose(a, n), rb = SymmetricEigen.decompose(b, n);
        for (int i = 0; i < n; i++) assertEquals(ra.values[i], rb.values[i], 0);
    }
}
