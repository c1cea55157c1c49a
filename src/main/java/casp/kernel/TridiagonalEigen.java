package casp.kernel;

import java.util.Arrays;

/**
 * Eigen-decomposition of a symmetric tridiagonal matrix T = Z diag(w) Z^T in float64, by divide
 * and conquer (Cuppen's method, organised as in LAPACK's dstedc) on top of the implicit QL
 * iteration for the small leaves.
 *
 * <p>Divide: T = diag(T1, T2) + |rho| u u^T, where rho couples the two halves and T1, T2 lose |rho|
 * on the touching diagonal entries. Conquer: the halves' eigen-decompositions turn T into
 * Qhat (D + sigma z z^T) Qhat^T with Qhat = diag(Q1, Q2) and z = Qhat^T u / sqrt(2), sigma = 2|rho|.
 * Merge: entries with tiny z, and pairs of nearly equal d, are deflated (their eigenpairs are
 * known); the other K eigenvalues are the roots of the secular equation
 * 1 + sigma sum z_i^2 / (d_i - lambda) = 0, one in each gap of D, found by a safeguarded two-pole
 * rational iteration. Each root is kept as an offset from its nearest pole so that d_i - lambda_j
 * is accurate; z is then recomputed from the roots (Gu and Eisenstat) so the eigenvectors
 * z_i / (d_i - lambda_j) come out orthogonal to working precision. The eigenvectors of T are
 * Qhat times those: two GEMMs (the rows of Q1 and of Q2 separately, so the zero blocks of Qhat
 * cost nothing), about 4/3 n^3 flops over all levels, most of the cost.
 */
final class TridiagonalEigen {
    private TridiagonalEigen() {}

    /** Problems up to this order are solved by QL directly. */
    static final int LEAF = 32;
    /** From this order on the two halves are solved in parallel. */
    static final int PARALLEL_MIN = 256;

    private static final double EPS = DecompUtil.EPS64;

    /** Column classes of Qhat: non-zero in the rows of Q1, of Q2, or both (after a deflating rotation). */
    private static final int TOP = 1, BOTTOM = 2;

    /**
     * Eigen-decomposition of the tridiagonal with diagonal d[0..n) and off-diagonal e[0..n-1)
     * (e[i] couples i and i+1; neither array is modified). Returns the eigenvalues in ascending
     * order; z [n, n] (row-major, length >= n * n) receives the eigenvectors as columns.
     */
    static double[] decompose(double[] d, double[] e, int n, double[] z) {
        double[] w = new double[n];
        if (n == 0) return w;
        double amax = 0;
        for (int i = 0; i < n; i++) amax = Math.max(amax, Math.abs(d[i]));
        for (int i = 0; i < n - 1; i++) amax = Math.max(amax, Math.abs(e[i]));
        Arrays.fill(z, 0, n * n, 0);
        if (amax == 0) {
            for (int i = 0; i < n; i++) z[i * n + i] = 1;
            return w;
        }
        // Scale to norm ~1 by a power of two (exact) so tolerances below are absolute.
        int shift = -Math.getExponent(amax);
        double[] dd = new double[n], ee = new double[n];
        for (int i = 0; i < n; i++) dd[i] = Math.scalb(d[i], shift);
        for (int i = 0; i < n - 1; i++) ee[i] = Math.scalb(e[i], shift);
        solve(dd, ee, 0, n, z, n);
        for (int i = 0; i < n; i++) w[i] = Math.scalb(dd[i], -shift);
        return w;
    }

    /** Solves the block [lo, lo + size): d[lo..] becomes ascending eigenvalues, z's diagonal block the vectors. */
    private static void solve(double[] d, double[] e, int lo, int size, double[] z, int ldz) {
        if (size <= LEAF) {
            leaf(d, e, lo, size, z, ldz);
            return;
        }
        int n1 = size / 2;
        double rho = e[lo + n1 - 1];
        d[lo + n1 - 1] -= Math.abs(rho);
        d[lo + n1] -= Math.abs(rho);
        if (size >= PARALLEL_MIN) {
            // The halves are independent (disjoint parts of d and z): one per thread. Calls made
            // inside run inline, so only the top split is parallel, the merges below it are not.
            Parallel.forRange(2, t -> {
                if (t == 0) solve(d, e, lo, n1, z, ldz);
                else solve(d, e, lo + n1, size - n1, z, ldz);
            });
        } else {
            solve(d, e, lo, n1, z, ldz);
            solve(d, e, lo + n1, size - n1, z, ldz);
        }
        merge(d, lo, n1, size - n1, rho, z, ldz);
    }

    /** QL on a small block, eigenvectors accumulated from the identity, then sorted ascending. */
    private static void leaf(double[] d, double[] e, int lo, int n, double[] z, int ldz) {
        double[] dl = Arrays.copyOfRange(d, lo, lo + n);
        double[] el = new double[n];
        System.arraycopy(e, lo, el, 0, n - 1);
        RotationLog log = new RotationLog(4 * n + 16);
        ql(dl, el, n, log);
        double[] zt = new double[n * n]; // row i = eigenvector of dl[i]
        for (int i = 0; i < n; i++) zt[i * n + i] = 1;
        for (int r = 0; r < log.size; r++) {
            int i = log.index[r];
            DecompUtil.rotate(zt, i * n, (i + 1) * n, n, log.c[r], log.s[r]);
        }
        int[] order = ascending(dl, n);
        for (int j = 0; j < n; j++) {
            int src = order[j];
            d[lo + j] = dl[src];
            for (int i = 0; i < n; i++) z[(lo + i) * ldz + lo + j] = zt[src * n + i];
        }
    }

    /** Indices 0..n-1 sorted by v ascending. */
    private static int[] ascending(double[] v, int n) {
        Integer[] o = new Integer[n];
        for (int i = 0; i < n; i++) o[i] = i;
        Arrays.sort(o, (x, y) -> Double.compare(v[x], v[y]));
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = o[i];
        return r;
    }

    /**
     * Merges the solved halves [lo, lo + n1) and [lo + n1, lo + n1 + n2) coupled by rho: on entry
     * their eigenvalues are in d (each half ascending) and their eigenvectors in the diagonal
     * blocks of z; on return the block [lo, lo + n) holds the decomposition of the whole.
     */
    private static void merge(double[] d, int lo, int n1, int n2, double rho, double[] z, int ldz) {
        int n = n1 + n2;
        int off = lo * ldz + lo;
        double sgn = rho >= 0 ? 1 : -1;
        // z = (last row of Q1, sign(rho) * first row of Q2) / sqrt(2); sigma = 2 |rho|.
        double[] zv = new double[n];
        double inv2 = 1 / Math.sqrt(2);
        for (int i = 0; i < n1; i++) zv[i] = z[off + (n1 - 1) * ldz + i] * inv2;
        for (int i = n1; i < n; i++) zv[i] = sgn * z[off + n1 * ldz + i] * inv2;
        double sigma = 2 * Math.abs(rho);

        // Sort the poles ascending (two sorted runs: merge them).
        int[] col = new int[n];
        for (int i = 0, a = 0, b = n1; i < n; i++) {
            col[i] = b >= n || (a < n1 && d[lo + a] <= d[lo + b]) ? a++ : b++;
        }
        double[] ds = new double[n], zs = new double[n];
        int[] type = new int[n];
        double dmax = 0, zmax = 0;
        for (int i = 0; i < n; i++) {
            ds[i] = d[lo + col[i]];
            zs[i] = zv[col[i]];
            type[i] = col[i] < n1 ? TOP : BOTTOM;
            dmax = Math.max(dmax, Math.abs(ds[i]));
            zmax = Math.max(zmax, Math.abs(zs[i]));
        }
        double tol = 8 * EPS * Math.max(dmax, zmax);

        // Deflation (LAPACK dlaed2): tiny sigma z_i, or a pole close to the previous kept one, where
        // a rotation of the two columns zeroes one z entry at the cost of an off-diagonal <= tol.
        boolean[] deflated = new boolean[n];
        int prev = -1;
        if (sigma * zmax <= tol) {
            Arrays.fill(deflated, true);
        } else {
            for (int j = 0; j < n; j++) {
                if (sigma * Math.abs(zs[j]) <= tol) {
                    deflated[j] = true;
                    continue;
                }
                if (prev >= 0) {
                    double s = zs[prev], c = zs[j];
                    double tau = Math.hypot(c, s);
                    double t = ds[j] - ds[prev];
                    c /= tau;
                    s = -s / tau;
                    if (Math.abs(t * c * s) <= tol) {
                        zs[j] = tau;
                        zs[prev] = 0;
                        rotateColumns(z, off, ldz, n, col[prev], col[j], c, s);
                        int tp = type[prev] | type[j];
                        type[prev] = tp;
                        type[j] = tp;
                        double dp = ds[prev], dj = ds[j];
                        ds[prev] = dp * c * c + dj * s * s;
                        ds[j] = dp * s * s + dj * c * c;
                        deflated[prev] = true;
                    }
                }
                prev = j;
            }
        }
        int k = 0;
        for (int j = 0; j < n; j++) if (!deflated[j]) k++;
        int[] kept = new int[k];
        for (int j = 0, p = 0; j < n; j++) if (!deflated[j]) kept[p++] = j;

        double[] values = new double[n];
        double[] result = new double[n * n]; // the new block, columns in the order of values (sorted below)
        // Deflated eigenpairs: (ds, column of Qhat) as they are.
        for (int j = 0; j < n; j++) {
            if (!deflated[j]) continue;
            values[j] = ds[j];
            int c = col[j];
            for (int i = 0; i < n; i++) result[i * n + j] = z[off + i * ldz + c];
        }
        if (k > 0) {
            double[] dk = new double[k], wk = new double[k], zk = new double[k];
            for (int i = 0; i < k; i++) {
                dk[i] = ds[kept[i]];
                zk[i] = zs[kept[i]];
                wk[i] = sigma * zk[i] * zk[i];
            }
            // delta row j: d_i - lambda_j; then overwritten by the eigenvector j (normalised).
            double[] delta = new double[k * k];
            double[] lambda = new double[k];
            secularRoots(dk, wk, k, delta, lambda);
            double[] zh = recomputeZ(dk, zk, k, delta);
            vectors(zh, k, delta);
            for (int j = 0; j < k; j++) values[kept[j]] = lambda[j];
            multiply(z, off, ldz, n1, n, col, type, kept, delta, result);
        }
        // Sort the merged eigenvalues ascending and write the block back.
        int[] order = ascending(values, n);
        for (int p = 0; p < n; p++) d[lo + p] = values[order[p]];
        for (int i = 0; i < n; i++) {
            int ri = off + i * ldz, rr = i * n;
            for (int p = 0; p < n; p++) z[ri + p] = result[rr + order[p]];
        }
    }

    /** (x, y) <- (c x + s y, c y - s x) on columns a and b of the n x n block at off. */
    private static void rotateColumns(double[] z, int off, int ldz, int n, int a, int b, double c, double s) {
        for (int i = 0; i < n; i++) {
            int r = off + i * ldz;
            double x = z[r + a], y = z[r + b];
            z[r + a] = c * x + s * y;
            z[r + b] = c * y - s * x;
        }
    }

    /**
     * result[:, kept[j]] = Qhat[:, kept cols] V[:, j] for the non-deflated columns, V^T in vt (k x k).
     * Rows of Q1 only meet columns that are non-zero there (TOP), rows of Q2 only BOTTOM ones.
     */
    private static void multiply(double[] z, int off, int ldz, int n1, int n, int[] col, int[] type, int[] kept,
                                 double[] vt, double[] result) {
        int k = kept.length;
        double[] prod = new double[n * k];
        for (int half = 0; half < 2; half++) {
            int mask = half == 0 ? TOP : BOTTOM;
            int r0 = half == 0 ? 0 : n1, rows = half == 0 ? n1 : n - n1;
            int kk = 0;
            for (int i = 0; i < k; i++) if ((type[kept[i]] & mask) != 0) kk++;
            if (kk == 0) continue;
            int[] sel = new int[kk];
            for (int i = 0, p = 0; i < k; i++) if ((type[kept[i]] & mask) != 0) sel[p++] = i;
            double[] a = new double[rows * kk]; // Qhat rows of this half, selected columns
            for (int r = 0; r < rows; r++) {
                int zr = off + (r0 + r) * ldz;
                for (int p = 0; p < kk; p++) a[r * kk + p] = z[zr + col[kept[sel[p]]]];
            }
            double[] b = new double[k * kk]; // V^T restricted to the selected components
            for (int j = 0; j < k; j++) {
                for (int p = 0; p < kk; p++) b[j * kk + p] = vt[j * k + sel[p]];
            }
            Gemm.dgemm(false, true, rows, k, kk, 1, a, 0, kk, b, 0, kk, 0, prod, r0 * k, k);
        }
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < k; j++) result[i * n + kept[j]] = prod[i * k + j];
        }
    }

    /** Roots per task: the secular solves, z and the vectors are independent per root / per index. */
    private static int tasks(int k) {
        return k >= 64 ? Math.min(Parallel.threads() * 4, k / 16) : 1;
    }

    /**
     * The k roots of 1 + sum w_i / (d_i - lambda) = 0 (d strictly ascending, w > 0): lambda[j] in
     * (d_j, d_{j+1}) (the last in (d_{k-1}, d_{k-1} + sum w)). Row j of delta receives d_i - lambda_j,
     * computed as (d_i - d_origin) - tau from the pole nearest the root, so it keeps full accuracy.
     */
    private static void secularRoots(double[] d, double[] w, int k, double[] delta, double[] lambda) {
        double wsum = 0;
        for (int i = 0; i < k; i++) wsum += w[i];
        final double total = wsum;
        int tasks = tasks(k);
        Parallel.forRange(tasks, t -> {
            for (int j = t; j < k; j += tasks) lambda[j] = root(d, w, k, j, total, delta, j * k);
        });
    }

    /** One root of the secular equation (see {@link #secularRoots}); fills delta[row..row+k). */
    private static double root(double[] d, double[] w, int k, int j, double wsum, double[] delta, int row) {
        int origin;
        double lo, hi, tau;
        if (j < k - 1) {
            double gap = d[j + 1] - d[j], mid = gap / 2;
            double f = 1;
            for (int i = 0; i < k; i++) f += w[i] / ((d[i] - d[j]) - mid);
            if (f >= 0) { // root in (d_j, d_j + gap/2]
                origin = j;
                lo = 0;
                hi = mid;
                tau = mid;
            } else { // root in (d_{j+1} - gap/2, d_{j+1})
                origin = j + 1;
                lo = -mid;
                hi = 0;
                tau = -mid;
            }
        } else {
            origin = k - 1;
            lo = 0;
            hi = wsum;
            tau = wsum;
        }
        double dOrg = d[origin];
        for (int i = 0; i < k; i++) delta[row + i] = d[i] - dOrg;
        boolean last = j == k - 1;
        double[] sums = new double[2];
        for (int iter = 0; iter < 200; iter++) {
            // psi: poles 0..j (left of the root), phi: poles j+1.. (right of it).
            DecompUtil.secularSums(delta, row, w, 0, j + 1, tau, sums);
            double psi = sums[0], dpsi = sums[1];
            DecompUtil.secularSums(delta, row, w, j + 1, k, tau, sums);
            double phi = sums[0], dphi = sums[1];
            double f = 1 + psi + phi;
            double err = 8 * (phi - psi + 1) + 3 * Math.abs(tau) * (dpsi + dphi);
            if (Math.abs(f) <= EPS * err || !(f == f)) break;
            if (f > 0) hi = tau;
            else lo = tau;
            // Two-pole model c + s1 / (D1 - eta) + s2 / (D2 - eta) matching f and f' at tau.
            double d1 = delta[row + j] - tau;
            double s1 = dpsi * d1 * d1;
            double eta;
            if (last) {
                double c = f - s1 / d1;
                eta = c > 0 ? d1 + s1 / c : Double.NaN;
            } else {
                double d2 = delta[row + j + 1] - tau;
                double s2 = dphi * d2 * d2;
                double c = f - s1 / d1 - s2 / d2;
                double b = c * (d1 + d2) + s1 + s2;
                double p = d1 * d2 * f;
                if (c == 0) {
                    eta = p / b;
                } else {
                    double disc = Math.sqrt(Math.abs(b * b - 4 * c * p));
                    eta = b <= 0 ? (b - disc) / (2 * c) : 2 * p / (b + disc);
                }
            }
            double next = tau + eta;
            // Safeguard: stay strictly inside the bracket, else bisect; late iterations alternate.
            if (!(next > lo && next < hi) || (iter > 40 && (iter & 1) == 0)) next = 0.5 * (lo + hi);
            if (next == tau || hi - lo <= 2 * EPS * Math.max(Math.abs(lo), Math.abs(hi))) {
                tau = next;
                break;
            }
            tau = next;
        }
        for (int i = 0; i < k; i++) delta[row + i] -= tau;
        return dOrg + tau;
    }

    /**
     * Gu-Eisenstat: the z for which the computed roots are exact eigenvalues of D + sigma z z^T,
     * up to the common factor sigma (irrelevant: each eigenvector is normalised):
     * z_i^2 ~ -(d_i - lambda_i) prod_{j != i} (d_i - lambda_j) / (d_i - d_j), sign of the original z_i.
     */
    private static double[] recomputeZ(double[] d, double[] z, int k, double[] delta) {
        double[] zh = new double[k];
        int tasks = tasks(k);
        Parallel.forRange(tasks, t -> {
            int i0 = (int) ((long) k * t / tasks), i1 = (int) ((long) k * (t + 1) / tasks);
            for (int i = i0; i < i1; i++) zh[i] = delta[i * k + i];
            for (int j = 0; j < k; j++) {
                int rj = j * k;
                double dj = d[j];
                for (int i = i0; i < i1; i++) {
                    if (i != j) zh[i] *= delta[rj + i] / (d[i] - dj);
                }
            }
            for (int i = i0; i < i1; i++) zh[i] = Math.copySign(Math.sqrt(Math.abs(zh[i])), z[i]);
        });
        return zh;
    }

    /** Row j of delta (d_i - lambda_j) becomes the unit eigenvector z_i / (d_i - lambda_j). */
    private static void vectors(double[] zh, int k, double[] delta) {
        int tasks = tasks(k);
        Parallel.forRange(tasks, t -> {
            for (int j = t; j < k; j += tasks) {
                int rj = j * k;
                for (int i = 0; i < k; i++) delta[rj + i] = zh[i] / delta[rj + i];
                double nrm = Math.sqrt(DecompUtil.dot(delta, rj, delta, rj, k));
                Blas1.scal(k, 1 / nrm, delta, rj);
            }
        });
    }

    /** The Givens rotations of the QL iteration, in order: rows (i, i+1) of Zt, cosine c, sine s. */
    static final class RotationLog {
        int size;
        int[] index;
        double[] c, s;

        RotationLog(int capacity) {
            index = new int[capacity];
            c = new double[capacity];
            s = new double[capacity];
        }

        void add(int i, double cv, double sv) {
            if (size == index.length) {
                int cap = size * 2;
                index = Arrays.copyOf(index, cap);
                c = Arrays.copyOf(c, cap);
                s = Arrays.copyOf(s, cap);
            }
            index[size] = i;
            c[size] = cv;
            s[size] = sv;
            size++;
        }
    }

    /** Maximum QL iterations for one eigenvalue before giving up (30 is plenty in practice). */
    private static final int MAX_ITER = 60;

    /**
     * Implicit QL with Wilkinson-type shifts on the tridiagonal (d, e) (e[n-1] must be 0): on
     * return d holds the eigenvalues (unsorted). The rotations are recorded (rows i, i+1 of Zt:
     * z_i <- c z_i - s z_{i+1}, z_{i+1} <- s z_i + c z_{i+1}) for the caller to apply.
     */
    static void ql(double[] d, double[] e, int n, RotationLog log) {
        for (int l = 0; l < n; l++) {
            int iter = 0;
            while (true) {
                int m = l;
                for (; m < n - 1; m++) {
                    double dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
                    if (Math.abs(e[m]) <= EPS * dd) break;
                }
                if (m == l) break;
                if (++iter > MAX_ITER) throw new ArithmeticException("tridiagonal QL did not converge at index " + l);
                // Shift from the leading 2x2 block, then chase the bulge from m-1 up to l.
                double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
                double r = Math.hypot(g, 1.0);
                g = d[m] - d[l] + e[l] / (g + Math.copySign(r, g));
                double s = 1, c = 1, p = 0;
                int i = m - 1;
                boolean underflow = false;
                for (; i >= l; i--) {
                    double f = s * e[i];
                    double b = c * e[i];
                    r = Math.hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0) {
                        // Rotation underflow: deflate and restart this eigenvalue.
                        d[i + 1] -= p;
                        e[m] = 0;
                        underflow = true;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2.0 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                    log.add(i, c, s);
                }
                if (underflow) continue;
                d[l] -= p;
                e[l] = g;
                e[m] = 0;
            }
        }
    }
}
