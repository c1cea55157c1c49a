package casp.kernel;

/**
 * Thin singular value decomposition of a small dense matrix in float64: A = U diag(s) Vt.
 *
 * <p>One-sided Jacobi (Hestenes): plane rotations orthogonalise the columns of A (held as
 * contiguous rows of A^T) until every pair is orthogonal to working precision; the column norms
 * are then the singular values. It is slow-ish (O(sweeps * m n^2)) but computes small singular
 * values to high relative accuracy, which makes it the reference the faster methods are tested
 * against. Tall inputs are first reduced by a Householder QR (A = Q R, SVD of R), wide inputs
 * are transposed. Meant for min(m, n) up to about 1000: on the 2-core dev machine 500 x 500 takes
 * ~0.7 s and 1000 x 1000 ~6 s (numpy's LAPACK: 0.05 s / 0.25 s); for large problems use
 * {@link RandomizedSvd} or {@link SymmetricEigen} of a Gram matrix.
 */
public final class DenseSvd {
    private DenseSvd() {}

    /** Result of {@link #decompose}: k = min(m, n). */
    public static final class Result {
        public final int m, n, k;
        /** [m, k] row-major, orthonormal columns. */
        public final double[] u;
        /** [k], descending, non-negative. */
        public final double[] s;
        /** [k, n] row-major, orthonormal rows. */
        public final double[] vt;

        Result(int m, int n, int k, double[] u, double[] s, double[] vt) {
            this.m = m;
            this.n = n;
            this.k = k;
            this.u = u;
            this.s = s;
            this.vt = vt;
        }
    }

    private static final int MAX_SWEEPS = 60;

    /**
     * Thin SVD of a [m, n] (row-major; not modified).
     *
     * @throws IllegalArgumentException if a holds NaN or infinity
     * @throws ArithmeticException if Jacobi does not converge in 60 sweeps (not seen in practice)
     */
    public static Result decompose(double[] a, int m, int n) {
        if (m < 0 || n < 0 || a.length < (long) m * n) throw new IllegalArgumentException("bad shape m=" + m + " n=" + n);
        for (int i = 0; i < m * n; i++) {
            if (!Double.isFinite(a[i])) throw new IllegalArgumentException("matrix has a non-finite entry at index " + i);
        }
        if (m < n) {
            // A^T = U' S V'^T  =>  A = V' S U'^T.
            Result t = decompose(DecompUtil.transpose(a, m, n), n, m);
            return new Result(m, n, t.k, DecompUtil.transpose(t.vt, t.k, m), t.s, DecompUtil.transpose(t.u, n, t.k));
        }
        int k = n;
        if (k == 0) return new Result(m, n, 0, new double[0], new double[0], new double[0]);
        if (m >= 2 * n && n > 1) {
            // Jacobi on R [n, n] instead of the tall A: rotations get m/n times cheaper.
            double[] q = a.clone();
            double[] r = new double[n * n];
            Qr.householder(q, m, n, r);
            Result rs = decompose(r, n, n);
            double[] u = new double[m * k];
            for (int i = 0; i < m; i++) {
                for (int p = 0; p < n; p++) {
                    double qip = q[i * n + p];
                    if (qip != 0) DecompUtil.axpy(qip, rs.u, p * k, u, i * k, k);
                }
            }
            return new Result(m, n, k, u, rs.s, rs.vt);
        }
        // w = A^T: row j is column j of A. vt accumulates the rotations (rows of V^T... see below).
        double[] w = DecompUtil.transpose(a, m, n);
        double[] v = new double[n * n]; // row j = column j of V
        for (int j = 0; j < n; j++) v[j * n + j] = 1;
        double[] norm2 = new double[n];
        for (int j = 0; j < n; j++) norm2[j] = DecompUtil.dot(w, j * m, w, j * m, m);
        double tol = DecompUtil.EPS64 * m;
        boolean rotated = true;
        for (int sweep = 0; rotated; sweep++) {
            if (sweep == MAX_SWEEPS) throw new ArithmeticException("one-sided Jacobi SVD did not converge");
            rotated = false;
            for (int i = 0; i < n - 1; i++) {
                for (int j = i + 1; j < n; j++) {
                    double alpha = norm2[i], beta = norm2[j];
                    if (alpha == 0 || beta == 0) continue;
                    double gamma = DecompUtil.dot(w, i * m, w, j * m, m);
                    if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
                    rotated = true;
                    // Rotation that zeroes the (i, j) entry of the 2x2 Gram [[alpha, gamma], [gamma, beta]].
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.copySign(1.0, zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    double c = 1 / Math.sqrt(1 + t * t);
                    double s = c * t;
                    // (w_i, w_j) <- (c w_i - s w_j, s w_i + c w_j); same for the columns of V.
                    DecompUtil.rotate(w, i * m, j * m, m, c, s);
                    DecompUtil.rotate(v, i * n, j * n, n, c, s);
                    norm2[i] = DecompUtil.dot(w, i * m, w, i * m, m);
                    norm2[j] = DecompUtil.dot(w, j * m, w, j * m, m);
                }
            }
        }
        Integer[] order = new Integer[n];
        for (int j = 0; j < n; j++) order[j] = j;
        double[] sv = new double[n];
        for (int j = 0; j < n; j++) sv[j] = Math.sqrt(norm2[j]);
        java.util.Arrays.sort(order, (x, y) -> Double.compare(sv[y], sv[x]));
        double[] s = new double[k];
        double[] u = new double[m * k];
        double[] vt = new double[k * n];
        boolean deficient = false;
        for (int p = 0; p < k; p++) {
            int j = order[p];
            s[p] = sv[j];
            System.arraycopy(v, j * n, vt, p * n, n);
            if (sv[j] > 0) {
                double inv = 1 / sv[j];
                for (int i = 0; i < m; i++) u[i * k + p] = w[j * m + i] * inv;
            } else {
                deficient = true;
            }
        }
        if (deficient) completeBasis(u, m, k, s);
        return new Result(m, n, k, u, s, vt);
    }

    /**
     * Columns of u whose singular value is zero are left empty by Jacobi; fill them with unit
     * vectors orthogonal to the others (Gram-Schmidt on coordinate vectors) so U stays orthonormal.
     */
    private static void completeBasis(double[] u, int m, int k, double[] s) {
        double[] col = new double[m];
        int e = 0;
        for (int p = 0; p < k; p++) {
            if (s[p] > 0) continue;
            while (true) {
                java.util.Arrays.fill(col, 0);
                col[e++ % m] = 1;
                for (int pass = 0; pass < 2; pass++) {
                    for (int q = 0; q < k; q++) {
                        if (q == p || (s[q] == 0 && q > p)) continue;
                        double d = 0;
                        for (int i = 0; i < m; i++) d += u[i * k + q] * col[i];
                        for (int i = 0; i < m; i++) col[i] -= d * u[i * k + q];
                    }
                }
                double nn = 0;
                for (int i = 0; i < m; i++) nn += col[i] * col[i];
                if (nn > 0.25) {
                    double inv = 1 / Math.sqrt(nn);
                    for (int i = 0; i < m; i++) u[i * k + p] = col[i] * inv;
                    break;
                }
            }
        }
    }
}
