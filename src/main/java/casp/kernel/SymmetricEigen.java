package casp.kernel;

/**
 * Eigen-decomposition of a dense symmetric matrix in float64: A = V diag(w) V^T.
 *
 * <p>Three steps, as in LAPACK's dsyevd:
 * <ol>
 *   <li>Householder reduction to tridiagonal form A = Q T Q^T, blocked (dsytrd/dlatrd): each
 *       panel of {@link #NB} columns needs one symmetric matrix-vector product with the trailing
 *       matrix per column (the memory-bound half of the 4/3 n^3 flops, a fused SIMD pass over the
 *       lower triangle split over the pool) and ends with one rank-2*NB update of the trailing lower
 *       triangle through the GEMM kernel.
 *   <li>Eigen-decomposition of T by divide and conquer ({@link TridiagonalEigen}).
 *   <li>Back-transformation V = Q Z with the reflectors applied in blocks (I - Y S Y^T, compact WY):
 *       three GEMM calls per block, 2 n^3 flops in all.
 * </ol>
 * Meant for n up to a few thousand; the randomized SVD uses it on the [r+p, r+p] Gram matrix and
 * {@link DenseSvd} on A^T A.
 */
public final class SymmetricEigen {
    private SymmetricEigen() {}

    /** Result of {@link #decompose}. */
    public static final class Result {
        /** Order of the matrix. */
        public final int n;
        /** Eigenvalues, in descending order. */
        public final double[] values;
        /** [n, n] row-major; column j is the unit eigenvector of values[j]. */
        public final double[] vectors;

        Result(int n, double[] values, double[] vectors) {
            this.n = n;
            this.values = values;
            this.vectors = vectors;
        }
    }

    /** Panel width of the tridiagonal reduction (the trailing update is a GEMM with k = 2 NB). */
    static final int NB = 32;
    /** Reflectors per block of the back-transformation. */
    static final int QB = 64;

    /**
     * Eigen-decomposition of the symmetric a [n, n] (row-major; only the lower triangle is read).
     * a is not modified.
     *
     * @throws IllegalArgumentException if a contains NaN or infinity
     * @throws ArithmeticException if an iteration does not converge (not seen in practice)
     */
    public static Result decompose(double[] a, int n) {
        if (n < 0 || a.length < (long) n * n) throw new IllegalArgumentException("need an [n, n] matrix, n=" + n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                if (!Double.isFinite(a[i * n + j])) throw new IllegalArgumentException("matrix has a non-finite entry at (" + i + "," + j + ")");
            }
        }
        double[] z = new double[n * n];
        double[] w = ascending(a, n, z);
        double[] values = new double[n];
        double[] vectors = new double[n * n];
        for (int j = 0; j < n; j++) values[j] = w[n - 1 - j];
        for (int i = 0; i < n; i++) {
            int r = i * n;
            for (int j = 0; j < n; j++) vectors[r + j] = z[r + n - 1 - j];
        }
        return new Result(n, values, vectors);
    }

    /**
     * The eigenvalues of the symmetric a [n, n] (lower triangle read, finite entries assumed) in
     * ascending order; z [n, n] receives the eigenvectors as columns in the same order.
     */
    static double[] ascending(double[] a, int n, double[] z) {
        if (n == 0) return new double[0];
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++) System.arraycopy(a, i * n, h, i * n, i + 1);
        double[] d = new double[n], e = new double[n], taus = new double[n];
        double[] vs = new double[n * n];
        tridiagonalize(h, n, d, e, vs, taus);
        h = null;
        double[] w = TridiagonalEigen.decompose(d, e, n, z);
        backTransform(vs, taus, n, z);
        return w;
    }

    /**
     * Blocked Householder tridiagonalisation of the symmetric h (lower triangle; destroyed):
     * A = Q T Q^T with Q = H_0 H_1 ... H_{n-2}, H_i = I - taus[i] v v^T, v in row i of vs
     * (v[i+1] = 1, entries i+2..n-1; zero elsewhere). Fills the diagonal d and the sub-diagonal e
     * of T (e[i] couples i and i+1, e[n-1] = 0).
     *
     * <p>Within a panel the trailing matrix is not updated; instead each column is corrected by
     * the panel's earlier reflectors in the compact form A - V W^T - W V^T (LAPACK dlatrd, lower).
     */
    private static void tridiagonalize(double[] h, int n, double[] d, double[] e, double[] vs, double[] taus) {
        double[] x = new double[n], y = new double[n];
        double[] t1 = new double[NB], t2 = new double[NB];
        SymvWork sw = new SymvWork(n);
        for (int k = 0; k < n; k += NB) {
            int kb = Math.min(NB, n - k), len = n - k;
            // Panel columns k..k+kb-1 (rows k..n-1) and the panel's V and W, all [len, kb].
            double[] p = new double[len * kb], v = new double[len * kb], w = new double[len * kb];
            for (int r = 0; r < len; r++) {
                int gr = k + r;
                for (int j = 0; j < kb; j++) {
                    int gc = k + j;
                    p[r * kb + j] = gr >= gc ? h[gr * n + gc] : h[gc * n + gr];
                }
            }
            for (int j = 0; j < kb; j++) {
                int i = k + j;
                if (j > 0) {
                    // Column i of A - V W^T - W V^T over the panel's earlier columns.
                    int rj = j * kb;
                    for (int r = j; r < len; r++) {
                        int rr = r * kb;
                        p[rr + j] -= DecompUtil.dot(v, rr, w, rj, j) + DecompUtil.dot(w, rr, v, rj, j);
                    }
                }
                d[i] = p[j * kb + j];
                if (i == n - 1) break;
                // Reflector H x = beta e_1 for x = column i below the diagonal (LAPACK dlarfg).
                double alpha = p[(j + 1) * kb + j];
                double xn2 = 0;
                for (int r = j + 2; r < len; r++) xn2 += p[r * kb + j] * p[r * kb + j];
                int vrow = i * n;
                v[(j + 1) * kb + j] = 1;
                vs[vrow + i + 1] = 1;
                if (xn2 == 0) {
                    e[i] = alpha;
                    taus[i] = 0; // H = I; W's column stays zero
                    continue;
                }
                double beta = -Math.copySign(Math.sqrt(alpha * alpha + xn2), alpha);
                double tau = (beta - alpha) / beta;
                double scl = 1 / (alpha - beta);
                e[i] = beta;
                taus[i] = tau;
                x[i + 1] = 1;
                for (int r = j + 2; r < len; r++) {
                    double vv = p[r * kb + j] * scl;
                    v[r * kb + j] = vv;
                    vs[vrow + k + r] = vv;
                    x[k + r] = vv;
                }
                // y = A22 x, A22 = h[i+1.., i+1..] as of the panel start.
                symv(h, n, i + 1, x, y, sw);
                if (j > 0) {
                    // y -= V (W^T x) + W (V^T x) over the panel's earlier columns.
                    java.util.Arrays.fill(t1, 0, j, 0);
                    java.util.Arrays.fill(t2, 0, j, 0);
                    for (int r = j + 1; r < len; r++) {
                        double xr = x[k + r];
                        int rr = r * kb;
                        DecompUtil.axpy(xr, w, rr, t1, 0, j);
                        DecompUtil.axpy(xr, v, rr, t2, 0, j);
                    }
                    for (int r = j + 1; r < len; r++) {
                        int rr = r * kb;
                        y[k + r] -= DecompUtil.dot(v, rr, t1, 0, j) + DecompUtil.dot(w, rr, t2, 0, j);
                    }
                }
                int m = n - i - 1;
                Blas1.scal(m, tau, y, i + 1);
                double c = -0.5 * tau * DecompUtil.dot(y, i + 1, x, i + 1, m);
                DecompUtil.axpy(c, x, i + 1, y, i + 1, m);
                for (int r = j + 1; r < len; r++) w[r * kb + j] = y[k + r];
            }
            int k2 = k + kb;
            if (k2 < n) {
                // Trailing lower triangle -= [V W] [W V]^T (a rank-2kb update, one GEMM).
                int len2 = n - k2, kk = 2 * kb;
                double[] vw = new double[len2 * kk], wv = new double[len2 * kk];
                for (int r = 0; r < len2; r++) {
                    int src = (kb + r) * kb, dst = r * kk;
                    System.arraycopy(v, src, vw, dst, kb);
                    System.arraycopy(w, src, vw, dst + kb, kb);
                    System.arraycopy(w, src, wv, dst, kb);
                    System.arraycopy(v, src, wv, dst + kb, kb);
                }
                DgemmDriver.gemm(false, true, len2, len2, kk, -1, vw, 0, kk, wv, 0, kk, 1, h, k2 * n + k2, n, 0);
            }
        }
        e[n - 1] = 0;
    }

    /** Per-thread partial results of {@link #symv}. */
    private static final class SymvWork {
        final double[][] partial;

        SymvWork(int n) {
            partial = new double[Math.max(1, Parallel.threads())][n];
        }
    }

    /** Below this many stored elements the product runs on one thread. */
    private static final long SYMV_PARALLEL_MIN = 1L << 15;

    /**
     * y[c0..n) = A[c0.., c0..] x[c0..n) for the symmetric A stored in the lower triangle of h.
     * Rows are split over the pool in bands of equal triangle area; each thread accumulates into
     * its own vector (the mirrored part scatters into earlier rows) and the partials are summed.
     */
    private static void symv(double[] h, int n, int c0, double[] x, double[] y, SymvWork sw) {
        int len = n - c0;
        java.util.Arrays.fill(y, c0, n, 0);
        int tasks = (long) len * len / 2 >= SYMV_PARALLEL_MIN ? Math.min(sw.partial.length, len / 16) : 1;
        if (tasks <= 1) {
            DecompUtil.symvLowerRows(h, n, c0, c0, n, x, y);
            return;
        }
        Parallel.forRange(tasks, t -> {
            // Band t covers rows whose triangle area share is [t/tasks, (t+1)/tasks).
            int r0 = c0 + (int) Math.round(len * Math.sqrt((double) t / tasks));
            int r1 = t == tasks - 1 ? n : c0 + (int) Math.round(len * Math.sqrt((double) (t + 1) / tasks));
            double[] part = sw.partial[t];
            java.util.Arrays.fill(part, c0, r1, 0);
            DecompUtil.symvLowerRows(h, n, c0, r0, r1, x, part);
        });
        for (int t = 0; t < tasks; t++) {
            int r1 = t == tasks - 1 ? n : c0 + (int) Math.round(len * Math.sqrt((double) (t + 1) / tasks));
            DecompUtil.axpy(1, sw.partial[t], c0, y, c0, r1 - c0);
        }
    }

    /**
     * z <- Q z with Q = H_0 ... H_{n-2} from {@link #tridiagonalize}, in blocks of QB reflectors
     * from the last: each block is I - Y S Y^T (S upper triangular, LAPACK dlarft forward), applied
     * to rows b0+1.. of z as three GEMMs.
     */
    private static void backTransform(double[] vs, double[] taus, int n, double[] z) {
        int nr = n - 1;
        if (nr <= 0) return;
        double[] s = new double[QB * QB], tmp = new double[QB];
        double[] x = new double[QB * n], x2 = new double[QB * n];
        for (int b0 = (nr - 1) / QB * QB; b0 >= 0; b0 -= QB) {
            int bc = Math.min(QB, nr - b0);
            int len = n - b0 - 1, vo = b0 * n + b0 + 1;
            java.util.Arrays.fill(s, 0);
            for (int l = 0; l < bc; l++) {
                double tl = taus[b0 + l];
                s[l * bc + l] = tl;
                if (tl == 0) continue;
                for (int q = 0; q < l; q++) tmp[q] = -tl * DecompUtil.dot(vs, (b0 + q) * n + b0 + 1, vs, (b0 + l) * n + b0 + 1, len);
                for (int q = 0; q < l; q++) {
                    double acc = 0;
                    for (int r = q; r < l; r++) acc += s[q * bc + r] * tmp[r];
                    s[q * bc + l] = acc;
                }
            }
            int zo = (b0 + 1) * n;
            Gemm.dgemm(false, false, bc, n, len, 1, vs, vo, n, z, zo, n, 0, x, 0, n);
            Gemm.dgemm(false, false, bc, n, bc, 1, s, 0, bc, x, 0, n, 0, x2, 0, n);
            Gemm.dgemm(true, false, len, n, bc, -1, vs, vo, n, x2, 0, n, 1, z, zo, n);
        }
    }
}
