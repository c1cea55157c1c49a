package casp.kernel;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Orthonormalisation of tall panels (m >= n, row-major).
 *
 * <ul>
 *   <li>{@link #orthonormalize(float[], int, int)}: CholeskyQR2 through the GEMM kernel (the fast
 *       path: two rounds of Y <- Y chol(Y^T Y)^-T, about 2 m n^2 flops of GEMM each), falling back
 *       to Householder in float64 when the panel is too ill-conditioned for a float32 Gram matrix.
 *   <li>{@link #householder(double[], int, int, double[])}: Householder QR in float64 (thin Q and R),
 *       unconditionally stable, used as the fallback and for small exact work.
 * </ul>
 */
public final class Qr {
    private Qr() {}

    /**
     * A float32 Gram matrix loses everything below u * ||Y||^2 (u = 6e-8), so CholeskyQR's first
     * round leaves ||Q^T Q - I|| ~ u cond(Y)^2; the second round repairs that only while it is well
     * below 1. Above this estimated condition number we take the Householder path instead.
     */
    private static final double MAX_COND_CHOLQR = 1.0e3;

    /** Column block of the triangular GEMM calls of Y L^-T (skips most of the zero upper triangle). */
    private static final int NB = 128;

    private static final AtomicLong FALLBACKS = new AtomicLong();

    /** How many times {@link #orthonormalize} fell back to Householder in this process (diagnostics). */
    public static long fallbackCount() {
        return FALLBACKS.get();
    }

    /**
     * Replaces the columns of the tall panel y [m, n] (row-major, m >= n) by an orthonormal basis
     * of their span (the thin Q of a QR factorisation, columns in the same order, so the span of
     * the first k columns is kept for every k). Rank-deficient panels still get an orthonormal Q.
     */
    public static void orthonormalize(float[] y, int m, int n) {
        orthonormalize(y, m, n, null);
    }

    /**
     * As {@link #orthonormalize(float[], int, int)}, with an optional scratch array of at least
     * m * n floats (avoids an allocation per call in loops).
     */
    public static void orthonormalize(float[] y, int m, int n, float[] scratch) {
        checkPanel(y, m, n);
        if (n == 0) return;
        if (scratch == null || scratch.length < (long) m * n) scratch = new float[m * n];
        if (choleskyQrStep(y, m, n, scratch) && choleskyQrStep(y, m, n, scratch)) return;
        FALLBACKS.incrementAndGet();
        householder(y, m, n);
    }

    /**
     * One CholeskyQR round: Y <- Y L^-T with L L^T = Y^T Y. Returns false, leaving y unchanged,
     * when the Cholesky factorisation fails or the panel is too ill-conditioned for float32.
     * The Gram matrix is a float SYRK (lower triangle only); the factorisation and the inverse of
     * L run in float64 through the shared {@link Cholesky} and triangular kernels.
     */
    static boolean choleskyQrStep(float[] y, int m, int n, float[] scratch) {
        float[] g = new float[n * n];
        Syrk.ssyrkLower(m, n, 1f, y, 0, n, 0f, g, 0, n);
        double[] l = new double[n * n]; // strict upper triangle stays 0: X = L^-1 below must be lower triangular
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) l[i * n + j] = g[i * n + j];
        }
        if (Cholesky.factorLower(l, 0, n, n) != Cholesky.OK) return false;
        double dmin = Double.POSITIVE_INFINITY, dmax = 0;
        for (int i = 0; i < n; i++) {
            double v = l[i * n + i];
            dmin = Math.min(dmin, v);
            dmax = Math.max(dmax, v);
        }
        // The diagonal of the Cholesky factor is that of R: its spread bounds cond(Y) from below.
        // (An overflowed Gram matrix gives an infinite or NaN diagonal, which fails this test too.)
        if (!(dmax / dmin <= MAX_COND_CHOLQR)) return false;
        Triangular.invert(false, n, l, 0, n);
        float[] x = new float[n * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) l[i];
        // Ynew[:, J] = Y[:, 0..j1) X[J, 0..j1)^T: X is lower triangular, so column block J needs j1 columns.
        for (int j0 = 0; j0 < n; j0 += NB) {
            int j1 = Math.min(n, j0 + NB);
            Gemm.sgemm(false, true, m, j1 - j0, j1, 1f, y, 0, n, x, j0 * n, n, 0f, scratch, j0, n);
        }
        System.arraycopy(scratch, 0, y, 0, m * n);
        return true;
    }

    /** Householder thin Q of the float panel y [m, n], computed in float64; y is overwritten by Q. */
    public static void householder(float[] y, int m, int n) {
        checkPanel(y, m, n);
        double[] a = new double[m * n];
        for (int i = 0; i < a.length; i++) a[i] = y[i];
        householder(a, m, n, null);
        for (int i = 0; i < a.length; i++) y[i] = (float) a[i];
    }

    /**
     * Householder QR of a [m, n] (row-major, m >= n) in float64: a is overwritten by the thin Q
     * [m, n] with orthonormal columns, and r (if not null, length >= n * n) receives the upper
     * triangular R [n, n] with A = Q R. R's diagonal may be negative.
     */
    public static void householder(double[] a, int m, int n, double[] r) {
        if (n < 0 || m < n || a.length < (long) m * n) {
            throw new IllegalArgumentException("need a tall panel [m, n] with m >= n, got m=" + m + " n=" + n);
        }
        double[] beta = new double[n];
        double[] diag = new double[n]; // R's diagonal (a[k][k] holds v's first entry meanwhile)
        double[] w = new double[n];
        for (int k = 0; k < n; k++) {
            double sigma = 0;
            for (int i = k + 1; i < m; i++) {
                double v = a[i * n + k];
                sigma += v * v;
            }
            double x0 = a[k * n + k];
            if (sigma == 0) {
                beta[k] = 0;
                diag[k] = x0;
                a[k * n + k] = 0;
                continue;
            }
            double mu = Math.sqrt(x0 * x0 + sigma);
            double alpha = x0 <= 0 ? mu : -mu;
            double v0 = x0 - alpha;
            a[k * n + k] = v0;
            beta[k] = 2.0 / (v0 * v0 + sigma);
            diag[k] = alpha;
            applyReflector(a, m, n, k, k + 1, beta[k], w);
        }
        if (r != null) {
            java.util.Arrays.fill(r, 0, n * n, 0);
            for (int k = 0; k < n; k++) {
                r[k * n + k] = diag[k];
                for (int j = k + 1; j < n; j++) r[k * n + j] = a[k * n + j];
            }
        }
        // Thin Q = H_0 ... H_{n-1} [I; 0], backwards. Reflector k's vector is column k below the
        // diagonal (plus v0 on it); copy it out before that column is overwritten by Q.
        double[] q = new double[m * n];
        for (int i = 0; i < n; i++) q[i * n + i] = 1;
        double[] v = new double[m];
        for (int k = n - 1; k >= 0; k--) {
            if (beta[k] == 0) continue;
            for (int i = k; i < m; i++) v[i] = a[i * n + k];
            reflectRows(q, m, n, k, k, v, beta[k], w);
        }
        System.arraycopy(q, 0, a, 0, m * n);
    }

    /** Applies I - beta v v^T (v = a[k.., k]) to the columns j0.. of rows k.. of a. */
    private static void applyReflector(double[] a, int m, int n, int k, int j0, double beta, double[] w) {
        if (j0 >= n) return;
        double[] v = new double[m];
        for (int i = k; i < m; i++) v[i] = a[i * n + k];
        reflectRows(a, m, n, k, j0, v, beta, w);
    }

    /**
     * a[k.., j0..] -= beta v (v^T a[k.., j0..]) with v[k..m) given; row operations only. Column
     * ranges are independent, so big panels split them over the pool.
     */
    private static void reflectRows(double[] a, int m, int n, int k, int j0, double[] v, double beta, double[] w) {
        int len = n - j0;
        if (len <= 0) return;
        long work = (long) (m - k) * len;
        int tasks = (int) Math.min(Parallel.threads(), len / 32);
        if (work >= (1 << 17) && tasks > 1) {
            Parallel.forRange(tasks, t -> {
                int c0 = j0 + (int) ((long) len * t / tasks), c1 = j0 + (int) ((long) len * (t + 1) / tasks);
                reflectColumns(a, m, n, k, c0, c1, v, beta, w);
            });
            return;
        }
        reflectColumns(a, m, n, k, j0, n, v, beta, w);
    }

    /** The columns [j0, j1) of {@link #reflectRows}; w[j0..j1) is scratch. */
    private static void reflectColumns(double[] a, int m, int n, int k, int j0, int j1, double[] v, double beta, double[] w) {
        int len = j1 - j0;
        java.util.Arrays.fill(w, j0, j1, 0);
        for (int i = k; i < m; i++) {
            double vi = v[i];
            if (vi != 0) DecompUtil.axpy(vi, a, i * n + j0, w, j0, len);
        }
        for (int i = k; i < m; i++) {
            double vi = v[i];
            if (vi != 0) DecompUtil.axpy(-beta * vi, w, j0, a, i * n + j0, len);
        }
    }

    private static void checkPanel(float[] y, int m, int n) {
        if (n < 0 || m < n || y.length < (long) m * n) {
            throw new IllegalArgumentException("need a tall panel [m, n] with m >= n, got m=" + m + " n=" + n);
        }
    }
}
