package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

/** Dense double helpers and oracles for the decomposition tests. */
final class LinalgTestUtil {
    private LinalgTestUtil() {}

    static double[] gaussian(int m, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] a = new double[m * n];
        for (int i = 0; i < a.length; i++) {
            double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
            a[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
        }
        return a;
    }

    /** C = op(A) op(B), naive triple loop. A is [m, k] (or [k, m] if ta), B is [k, n] (or [n, k] if tb). */
    static double[] mul(double[] a, boolean ta, double[] b, boolean tb, int m, int n, int k) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = s;
            }
        }
        return c;
    }

    /** Orthonormal Q [m, n] (Gram-Schmidt twice on a Gaussian matrix, columns). */
    static double[] randomOrthonormal(int m, int n, long seed) {
        double[] a = gaussian(m, n, seed);
        for (int j = 0; j < n; j++) {
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < j; p++) {
                    double d = 0;
                    for (int i = 0; i < m; i++) d += a[i * n + p] * a[i * n + j];
                    for (int i = 0; i < m; i++) a[i * n + j] -= d * a[i * n + p];
                }
            }
            double nn = 0;
            for (int i = 0; i < m; i++) nn += a[i * n + j] * a[i * n + j];
            nn = Math.sqrt(nn);
            for (int i = 0; i < m; i++) a[i * n + j] /= nn;
        }
        return a;
    }

    /** U diag(s) V^T with U [m, k], V [n, k] orthonormal, as a [m, n] matrix. */
    static double[] withSpectrum(int m, int n, double[] s, long seed) {
        int k = s.length;
        double[] u = randomOrthonormal(m, k, seed);
        double[] v = randomOrthonormal(n, k, seed + 1);
        double[] us = u.clone();
        for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) us[i * k + j] *= s[j];
        return mul(us, false, v, true, m, n, k);
    }

    /** max |Q^T Q - I| over the k columns of q [m, k]. */
    static double orthonormalityError(double[] q, int m, int k) {
        double[] g = mul(q, true, q, false, k, k, m);
        double e = 0;
        for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) e = Math.max(e, Math.abs(g[i * k + j] - (i == j ? 1 : 0)));
        return e;
    }

    /**
     * Singular values of a [m, n], descending, by the plainest one-sided Jacobi (cyclic sweeps over
     * all column pairs of A or A^T until every pair is orthogonal to 1e-15): an independent oracle.
     */
    static double[] jacobiSingularValues(double[] a, int m, int n) {
        int rows = Math.max(m, n), cols = Math.min(m, n);
        double[][] c = new double[cols][rows]; // columns of the tall orientation
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                if (m >= n) c[j][i] = a[i * n + j];
                else c[i][j] = a[i * n + j];
            }
        }
        for (int sweep = 0; sweep < 100; sweep++) {
            boolean rotated = false;
            for (int p = 0; p < cols; p++) {
                for (int q = p + 1; q < cols; q++) {
                    double alpha = 0, beta = 0, gamma = 0;
                    for (int i = 0; i < rows; i++) {
                        alpha += c[p][i] * c[p][i];
                        beta += c[q][i] * c[q][i];
                        gamma += c[p][i] * c[q][i];
                    }
                    if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma == 0) continue;
                    rotated = true;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.signum(zeta == 0 ? 1 : zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    double cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
                    for (int i = 0; i < rows; i++) {
                        double x = c[p][i], y = c[q][i];
                        c[p][i] = cs * x - sn * y;
                        c[q][i] = sn * x + cs * y;
                    }
                }
            }
            if (!rotated) break;
        }
        double[] s = new double[cols];
        for (int j = 0; j < cols; j++) {
            double nn = 0;
            for (int i = 0; i < rows; i++) nn += c[j][i] * c[j][i];
            s[j] = Math.sqrt(nn);
        }
        java.util.Arrays.sort(s);
        for (int i = 0; i < cols / 2; i++) {
            double t = s[i];
            s[i] = s[cols - 1 - i];
            s[cols - 1 - i] = t;
        }
        return s;
    }

    static double frobenius(double[] a) {
        double s = 0;
        for (double v : a) s += v * v;
        return Math.sqrt(s);
    }

    static double maxAbsDiff(double[] a, double[] b) {
        double e = 0;
        for (int i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
        return e;
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    static void assertBelow(double value, double bound, String what) {
        assertTrue(value <= bound, what + ": " + value + " > " + bound);
    }
}
