package casp.kernel;

import static casp.kernel.LinalgTestUtil.assertBelow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The divide-and-conquer tridiagonal eigensolver against QL (eigenvalues) and the definition (vectors). */
class TridiagonalEigenTest {

    /** Eigenvalues by the QL iteration alone (no divide and conquer), ascending. */
    static double[] qlValues(double[] d, double[] e, int n) {
        double[] dd = Arrays.copyOf(d, n), ee = new double[n];
        System.arraycopy(e, 0, ee, 0, Math.max(0, n - 1));
        TridiagonalEigen.ql(dd, ee, n, new TridiagonalEigen.RotationLog(16));
        Arrays.sort(dd);
        return dd;
    }

    /** T Z = Z diag(w), Z^T Z = I, w ascending and equal to QL's. */
    static double[] check(double[] d, double[] e, int n, String what) {
        double[] z = new double[n * n];
        double[] w = TridiagonalEigen.decompose(d, e, n, z);
        double norm = 0;
        for (int i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]) + (i > 0 ? Math.abs(e[i - 1]) : 0) + (i < n - 1 ? Math.abs(e[i]) : 0));
        norm = Math.max(norm, Double.MIN_NORMAL);
        double res = 0;
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < n; i++) {
                double tz = d[i] * z[i * n + j];
                if (i > 0) tz += e[i - 1] * z[(i - 1) * n + j];
                if (i < n - 1) tz += e[i] * z[(i + 1) * n + j];
                res = Math.max(res, Math.abs(tz - w[j] * z[i * n + j]));
            }
        }
        assertBelow(res / norm, 1e-14 * n, what + " residual");
        assertBelow(LinalgTestUtil.orthonormalityError(z, n, n), 1e-14 * n, what + " orthogonality");
        double[] ref = qlValues(d, e, n);
        for (int j = 0; j < n; j++) {
            if (j > 0) assertTrue(w[j - 1] <= w[j], what + " ascending");
            assertEquals(ref[j], w[j], 1e-14 * n * norm, what + " eigenvalue " + j);
        }
        return w;
    }

    @Test
    void randomTridiagonalsAtAwkwardSizes() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[] {1, 2, 7, 32, 33, 65, 129, 257}) {
            double[] d = new double[n], e = new double[n];
            for (int i = 0; i < n; i++) {
                d[i] = r.nextDouble() * 2 - 1;
                e[i] = r.nextDouble() * 2 - 1;
            }
            check(d, e, n, "random n=" + n);
        }
    }

    @Test
    void laplacianHasKnownEigenvalues() {
        int n = 100;
        double[] d = new double[n], e = new double[n];
        Arrays.fill(d, 2);
        Arrays.fill(e, -1);
        double[] w = check(d, e, n, "laplacian");
        for (int k = 1; k <= n; k++) assertEquals(2 - 2 * Math.cos(k * Math.PI / (n + 1)), w[k - 1], 1e-13);
    }

    @Test
    void gluedWilkinsonMatricesDeflateHeavily() {
        // Five copies of W21+ glued by 1e-8: pairs of eigenvalues agree to many digits.
        int blocks = 5, b = 21, n = blocks * b;
        double[] d = new double[n], e = new double[n];
        for (int k = 0; k < blocks; k++) {
            for (int i = 0; i < b; i++) {
                d[k * b + i] = Math.abs(10 - i);
                e[k * b + i] = i == b - 1 ? 1e-8 : 1;
            }
        }
        check(d, e, n, "glued Wilkinson");
    }

    @Test
    void repeatedDiagonalAndSplitMatrices() {
        int n = 100;
        double[] d = new double[n], e = new double[n];
        for (int i = 0; i < n; i++) d[i] = i % 3; // a diagonal matrix with three repeated values
        double[] w = check(d, e, n, "diagonal");
        double[] sorted = d.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < n; i++) assertEquals(sorted[i], w[i], 0);
        // Constant diagonal, tiny and negative couplings.
        Arrays.fill(d, 1);
        for (int i = 0; i < n; i++) e[i] = (i % 2 == 0 ? -1 : 1) * 1e-12 * (i + 1);
        check(d, e, n, "nearly scalar");
        double[] z = new double[0];
        assertEquals(0, TridiagonalEigen.decompose(new double[0], new double[0], 0, z).length);
    }

    @Test
    void extremeScales() {
        SplittableRandom r = new SplittableRandom(5);
        int n = 70;
        for (double f : new double[] {1e-200, 1e200}) {
            double[] d = new double[n], e = new double[n];
            for (int i = 0; i < n; i++) {
                d[i] = (r.nextDouble() - 0.5) * f;
                e[i] = (r.nextDouble() - 0.5) * f;
            }
            check(d, e, n, "scale " + f);
        }
        double[] zero = new double[9];
        double[] z = new double[81];
        double[] w = TridiagonalEigen.decompose(zero, zero, 9, z);
        for (double v : w) assertEquals(0, v);
        assertBelow(LinalgTestUtil.orthonormalityError(z, 9, 9), 0, "zero matrix: identity vectors");
    }
}
