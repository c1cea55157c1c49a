package casp.kernel;

/**
 * Eigen-decomposition of a small dense symmetric matrix in float64: A = V diag(w) V^T.
 *
 * <p>Householder reduction to tridiagonal form followed by the implicit QL iteration with
 * Wilkinson-type shifts (the classic tridiagonal QL algorithm). Cost about 9 n^3 flops, all of it in
 * contiguous row operations (the eigenvector matrix is kept transposed so each Givens rotation
 * touches two contiguous rows); forming the eigenvectors runs in parallel. Meant for n up to a
 * few thousand; the randomized SVD uses it on the [r+p, r+p] Gram matrix.
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

    /** Maximum QL iterations for one eigenvalue before giving up (30 is plenty in practice). */
    private static final int MAX_ITER = 60;

    /**
     * Eigen-decomposition of the symmetric a [n, n] (row-major; only the lower triangle is read).
     * a is not modified.
     *
     * @throws IllegalArgumentException if a contains NaN or infinity
     * @throws ArithmeticException if the QL iteration does not converge (not seen in practice)
     */
    public static Result decompose(double[] a, int n) {
        if (n < 0 || a.length < (long) n * n) throw new IllegalArgumentException("need an [n, n] matrix, n=" + n);
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double v = a[i * n + j];
                if (!Double.isFinite(v)) throw new IllegalArgumentException("matrix has a non-finite entry at (" + i + "," + j + ")");
                h[i * n + j] = v;
                h[j * n + i] = v;
            }
        }
        double[] d = new double[n];
        double[] e = new double[n];
        double[] vs = new double[n * n];
        double[] betas = new double[n];
        tridiagonalize(h, n, d, e, vs, betas);
        RotationLog log = new RotationLog(4 * n + 16);
        tridiagonalQl(d, e, n, log);
        double[] zt = eigenvectors(n, vs, betas, log);
        // Sort descending; zt row i is the eigenvector of d[i].
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (x, y) -> Double.compare(d[y], d[x]));
        double[] values = new double[n];
        double[] vectors = new double[n * n];
        for (int j = 0; j < n; j++) {
            int src = order[j];
            values[j] = d[src];
            for (int k = 0; k < n; k++) vectors[k * n + j] = zt[src * n + k];
        }
        return new Result(n, values, vectors);
    }

    /**
     * Householder tridiagonalisation of the full symmetric h (destroyed): A = Q T Q^T with
     * Q = H_0 H_1 ... H_{n-3}, H_k = I - betas[k] v v^T, v stored in row k of vs (entries k+1..n-1).
     * Fills the diagonal d and the sub-diagonal e of T (e[i] couples i and i+1, e[n-1] = 0).
     */
    private static void tridiagonalize(double[] h, int n, double[] d, double[] e, double[] vs, double[] betas) {
        // Step k annihilates h[k+2.., k] with a reflector acting on indices k+1..n-1.
        double[] p = new double[n];
        for (int k = 0; k < n - 2; k++) {
            int len = n - k - 1;
            int v0 = k * n + k + 1;
            // x = h[k+1.., k] (equal to row k by symmetry: contiguous)
            System.arraycopy(h, k * n + k + 1, vs, v0, len);
            double sigma = DecompUtil.dot(vs, v0 + 1, vs, v0 + 1, len - 1);
            double x0 = vs[v0];
            d[k] = h[k * n + k];
            if (sigma == 0) {
                // Already tridiagonal in this column: no reflection.
                e[k] = x0;
                betas[k] = 0;
                continue;
            }
            double mu = Math.sqrt(x0 * x0 + sigma);
            double alpha = x0 <= 0 ? mu : -mu; // H x = alpha e1, sign chosen to avoid cancellation
            double v0val = x0 - alpha;
            vs[v0] = v0val;
            double beta = 2.0 / (v0val * v0val + sigma);
            betas[k] = beta;
            e[k] = alpha;
            // Trailing block B = h[k+1.., k+1..]: p = beta B v; w = p - (beta/2)(p.v) v; B -= v w^T + w v^T.
            for (int i = k + 1; i < n; i++) p[i] = beta * DecompUtil.dot(h, i * n + k + 1, vs, v0, len);
            double pv = DecompUtil.dot(p, k + 1, vs, v0, len);
            double c = 0.5 * beta * pv;
            for (int i = k + 1; i < n; i++) p[i] -= c * vs[v0 + i - k - 1];
            for (int i = k + 1; i < n; i++) {
                int ri = i * n + k + 1;
                DecompUtil.axpy(-vs[v0 + i - k - 1], p, k + 1, h, ri, len);
                DecompUtil.axpy(-p[i], vs, v0, h, ri, len);
            }
        }
        if (n >= 2) {
            d[n - 2] = h[(n - 2) * n + n - 2];
            e[n - 2] = h[(n - 1) * n + n - 2];
        }
        if (n >= 1) d[n - 1] = h[(n - 1) * n + n - 1];
        if (n >= 1) e[n - 1] = 0;

    }

    /** Columns of Z handled by one task: 64 doubles, so a chunk of n rows stays in L2. */
    private static final int CHUNK = 64;

    /**
     * The eigenvectors as rows of Zt = (Q G_1 G_2 ...)^T, G the recorded QL rotations. Each
     * phase splits into column chunks that need no communication: Q = H_0 ... H_{n-3} by column
     * chunks (column c only meets reflectors 0 .. c-1), then each rotation touches the same
     * chunk of two rows of Zt, so the whole rotation sequence runs chunk by chunk, in parallel.
     */
    private static double[] eigenvectors(int n, double[] vs, double[] betas, RotationLog log) {
        double[] q = new double[n * n];
        int chunks = (n + CHUNK - 1) / CHUNK;
        Parallel.forRange(Math.min(chunks, Parallel.threads() * 4), task -> {
            int tasks = Math.min(chunks, Parallel.threads() * 4);
            double[] w = new double[CHUNK];
            for (int ch = task; ch < chunks; ch += tasks) {
                int c0 = ch * CHUNK, c1 = Math.min(n, c0 + CHUNK);
                for (int c = c0; c < c1; c++) q[c * n + c] = 1;
                for (int k = Math.min(c1 - 2, n - 3); k >= 0; k--) {
                    double beta = betas[k];
                    if (beta == 0) continue;
                    int from = Math.max(c0, k + 1), len = c1 - from;
                    int v0 = k * n;
                    java.util.Arrays.fill(w, 0, len, 0);
                    for (int i = k + 1; i < n; i++) {
                        double vi = vs[v0 + i];
                        if (vi != 0) DecompUtil.axpy(vi, q, i * n + from, w, 0, len);
                    }
                    for (int i = k + 1; i < n; i++) {
                        double vi = vs[v0 + i];
                        if (vi != 0) DecompUtil.axpy(-beta * vi, w, 0, q, i * n + from, len);
                    }
                }
            }
        });
        double[] zt = DecompUtil.transpose(q, n, n);
        int count = log.size;
        int[] idx = log.index;
        double[] cs = log.c, sn = log.s;
        Parallel.forRange(Math.min(chunks, Parallel.threads() * 4), task -> {
            int tasks = Math.min(chunks, Parallel.threads() * 4);
            for (int ch = task; ch < chunks; ch += tasks) {
                int c0 = ch * CHUNK, len = Math.min(n, c0 + CHUNK) - c0;
                for (int r = 0; r < count; r++) {
                    int i = idx[r];
                    DecompUtil.rotate(zt, i * n + c0, (i + 1) * n + c0, len, cs[r], sn[r]);
                }
            }
        });
        return zt;
    }

    /** The Givens rotations of the QL iteration, in order: rows (i, i+1) of Zt, cosine c, sine s. */
    private static final class RotationLog {
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
                index = java.util.Arrays.copyOf(index, cap);
                c = java.util.Arrays.copyOf(c, cap);
                s = java.util.Arrays.copyOf(s, cap);
            }
            index[size] = i;
            c[size] = cv;
            s[size] = sv;
            size++;
        }
    }

    /**
     * Implicit QL on the tridiagonal (d, e): on return d holds the eigenvalues. The rotations are
     * recorded (rows i, i+1 of Zt: z_i <- c z_i - s z_{i+1}, z_{i+1} <- s z_i + c z_{i+1}) and
     * applied to the eigenvectors afterwards, in parallel.
     */
    private static void tridiagonalQl(double[] d, double[] e, int n, RotationLog log) {
        for (int l = 0; l < n; l++) {
            int iter = 0;
            while (true) {
                int m = l;
                for (; m < n - 1; m++) {
                    double dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
                    if (Math.abs(e[m]) <= DecompUtil.EPS64 * dd) break;
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
