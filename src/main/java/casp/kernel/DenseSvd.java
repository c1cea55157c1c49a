package casp.kernel;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Thin singular value decomposition of a dense matrix in float64: A = U diag(s) Vt.
 *
 * <p>For A [m, n] with m >= n (wide inputs are transposed):
 * <ol>
 *   <li>Gram matrix G = A^T A (lower triangle, through the GEMM kernel) and its eigen-decomposition
 *       G = V diag(lambda) V^T ({@link SymmetricEigen}: blocked tridiagonalisation, divide and
 *       conquer, blocked back-transformation). V is orthogonal to working precision and nearly
 *       diagonalises A^T A, but the eigenvalues of G only carry absolute accuracy eps ||A||^2, so
 *       neither sqrt(lambda) nor A V / sqrt(lambda) is used directly for the small singular values.
 *   <li>W = A V (GEMM). Its columns are orthogonal up to about eps ||A||^2 / (s_i s_j).
 *   <li>Refinement by one-sided Jacobi (Hestenes) on W, the rotations mirrored on V: the Gram
 *       matrix W^T W is formed by one GEMM, only the column pairs whose cosine exceeds
 *       m * eps are rotated, and only the rotated columns are checked again (W_S^T W, another
 *       GEMM), until every pair is orthogonal to working precision. Because V already nearly
 *       diagonalises A^T A, this touches only the columns of small singular values (those with
 *       s_i s_j below roughly ||A||^2 / m) and converges in a couple of sweeps. Singular values
 *       are then the column norms of W (absolute error about eps ||A||, as for any backward-stable
 *       SVD), U = W diag(1/s) is orthonormal to working precision, and Vt = V^T.
 * </ol>
 * Columns of W whose norm is at the rounding level of A V (below eps max(m, n) ||A||_2) are
 * numerically zero: their singular value is reported as 0 and their U columns are an orthonormal
 * completion (CholeskyQR2 of random vectors projected off the others).
 *
 * <p>Cost: about 5 m n^2 flops of GEMM (A^T A, A V, the checks) plus the n x n eigen-decomposition,
 * instead of the O(sweeps m n^2) level-1 work of a plain Jacobi SVD: at n = 1000 on the 2-vCPU
 * development machine about 0.25-0.35 s of CPU time once the JIT has compiled it (the plain Jacobi
 * SVD this replaces took 7-9 s; numpy's LAPACK gesdd on float32 takes about 0.4 s single-threaded).
 * The Jacobi refinement costs little when the singular values span a few decades; a spectrum
 * spanning ten or more decades leaves A V far from orthogonal in its small columns and costs
 * several Jacobi rounds over them. Meant for min(m, n) up to a few thousand.
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

    /** Rotate-and-check rounds before giving up. */
    private static final int MAX_ROUNDS = 100;

    /**
     * Thin SVD of a [m, n] (row-major; not modified).
     *
     * @throws IllegalArgumentException if a holds NaN or infinity
     * @throws ArithmeticException if the Jacobi refinement does not converge (not seen in practice)
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
        double amax = 0;
        for (int i = 0; i < m * n; i++) amax = Math.max(amax, Math.abs(a[i]));
        double[] vt = new double[n * n];
        if (amax == 0) {
            for (int j = 0; j < n; j++) vt[j * n + j] = 1;
            double[] u = new double[m * k];
            boolean[] all = new boolean[k];
            Arrays.fill(all, true);
            completeBasis(u, m, k, new double[k * m], all);
            return new Result(m, n, k, u, new double[k], vt);
        }
        // Scale by a power of two (exact) so the Gram matrix neither overflows nor underflows.
        int shift = -Math.getExponent(amax);
        double[] as = new double[m * n];
        for (int i = 0; i < m * n; i++) as[i] = Math.scalb(a[i], shift);

        double[] g = new double[n * n];
        DgemmDriver.gemm(true, false, n, n, m, 1, as, 0, n, as, 0, n, 0, g, 0, n, 0);
        double[] z = new double[n * n];
        SymmetricEigen.ascending(g, n, z);
        g = null;
        // vt row p = eigenvector of the p-th largest eigenvalue.
        for (int i = 0; i < n; i++) {
            for (int p = 0; p < n; p++) vt[p * n + i] = z[i * n + n - 1 - p];
        }
        z = null;
        // wt = V^T A^T [n, m]: row j is column j of W = A V (contiguous for the rotations).
        double[] wt = new double[n * m];
        Gemm.dgemm(false, true, n, m, n, 1, vt, 0, n, as, 0, n, 0, wt, 0, m);
        as = null;
        double[] norm2 = new double[n];
        double zero2 = refine(wt, vt, m, n, norm2);

        Integer[] order = new Integer[n];
        for (int j = 0; j < n; j++) order[j] = j;
        Arrays.sort(order, (x, y) -> Double.compare(norm2[y], norm2[x]));
        double[] s = new double[k];
        double[] ut = new double[k * m]; // U^T: row p = column p of U
        double[] vto = new double[k * n];
        boolean[] zero = new boolean[k];
        boolean deficient = false;
        for (int p = 0; p < k; p++) {
            int j = order[p];
            System.arraycopy(vt, j * n, vto, p * n, n);
            if (norm2[j] > zero2) {
                double sj = Math.sqrt(norm2[j]);
                s[p] = Math.scalb(sj, -shift);
                double inv = 1 / sj;
                for (int i = 0; i < m; i++) ut[p * m + i] = wt[j * m + i] * inv;
            } else {
                zero[p] = true;
                deficient = true;
            }
        }
        double[] u = new double[m * k];
        if (deficient) completeBasis(u, m, k, ut, zero);
        else u = DecompUtil.transpose(ut, k, m);
        return new Result(m, n, k, u, s, vto);
    }

    /**
     * One-sided Jacobi on the rows of wt [n, m] (the columns of W), each rotation also applied to
     * the rows of vt [n, n], until every pair of non-negligible columns has
     * |w_i . w_j| <= m eps |w_i| |w_j|. Fills norm2 with the squared column norms and returns the
     * squared norm at or below which a column counts as zero.
     *
     * <p>A threshold Jacobi driven by GEMM checks: the Gram matrix of all columns names the pairs
     * to rotate; after a pass over them, only the inner products of the rotated columns can have
     * changed, so one product W_R^T W names the pairs of the next pass.
     */
    private static double refine(double[] wt, double[] vt, int m, int n, double[] norm2) {
        double tol = DecompUtil.EPS64 * m;
        // Gram of the columns, lower triangle: entries carry relative accuracy (eps |w_i| |w_j|).
        double[] c = new double[n * n];
        DgemmDriver.gemm(false, true, n, n, m, 1, wt, 0, m, wt, 0, m, 0, c, 0, n, 0);
        double max2 = 0;
        for (int j = 0; j < n; j++) {
            norm2[j] = c[j * n + j];
            max2 = Math.max(max2, norm2[j]);
        }
        double zeroNorm = DecompUtil.EPS64 * Math.max(m, n) * Math.sqrt(max2);
        double zero2 = zeroNorm * zeroNorm;
        PairList pairs = new PairList(n);
        for (int i = 1; i < n; i++) {
            if (norm2[i] <= zero2) continue;
            for (int j = 0; j < i; j++) {
                if (norm2[j] > zero2 && Math.abs(c[i * n + j]) > tol * Math.sqrt(norm2[i] * norm2[j])) pairs.add(j, i);
            }
        }
        c = null;
        boolean[] touched = new boolean[n];
        for (int round = 0; pairs.size > 0; round++) {
            if (round == MAX_ROUNDS) throw new ArithmeticException("one-sided Jacobi refinement did not converge");
            pairs.sort();
            Arrays.fill(touched, false);
            // Stop when Jacobi's own dot products find nothing left to rotate (a GEMM dot product
            // can differ from them in the last bits, which must not make this loop spin).
            if (!rotatePairs(wt, vt, m, n, pairs, norm2, zero2, tol, touched)) break;
            int[] set = indices(touched);
            int p = set.length;
            double[] ws = new double[p * m];
            for (int q = 0; q < p; q++) System.arraycopy(wt, set[q] * m, ws, q * m, m);
            double[] cross = new double[p * n];
            Gemm.dgemm(false, true, p, n, m, 1, ws, 0, m, wt, 0, m, 0, cross, 0, n);
            pairs.size = 0;
            for (int q = 0; q < p; q++) {
                int i = set[q];
                if (norm2[i] <= zero2) continue;
                for (int j = 0; j < n; j++) {
                    if (j == i || (touched[j] && j > i) || norm2[j] <= zero2) continue; // pairs within set once
                    if (Math.abs(cross[q * n + j]) > tol * Math.sqrt(norm2[i] * norm2[j])) pairs.add(Math.min(i, j), Math.max(i, j));
                }
            }
        }
        return zero2;
    }

    /** Column pairs (i < j) to visit, kept in row-cyclic order. */
    private static final class PairList {
        final int n;
        long[] keys = new long[64];
        int size;

        PairList(int n) {
            this.n = n;
        }

        void add(int i, int j) {
            if (size == keys.length) keys = Arrays.copyOf(keys, size * 2);
            keys[size++] = (long) i * n + j;
        }

        void sort() {
            Arrays.sort(keys, 0, size);
        }
    }

    private static int[] indices(boolean[] flags) {
        int count = 0;
        for (boolean f : flags) if (f) count++;
        int[] r = new int[count];
        for (int j = 0, p = 0; j < flags.length; j++) if (flags[j]) r[p++] = j;
        return r;
    }

    /**
     * One Jacobi pass over the listed pairs: each pair whose cosine (recomputed, earlier rotations
     * may have changed it) exceeds tol is rotated. Marks the rotated columns in touched; returns
     * whether any rotation was made.
     */
    private static boolean rotatePairs(double[] wt, double[] vt, int m, int n, PairList pairs, double[] norm2,
                                       double zero2, double tol, boolean[] touched) {
        boolean any = false;
        for (int p = 0; p < pairs.size; p++) {
            int i = (int) (pairs.keys[p] / pairs.n), j = (int) (pairs.keys[p] % pairs.n);
            double alpha = norm2[i], beta = norm2[j];
            if (alpha <= zero2 || beta <= zero2) continue;
            double gamma = DecompUtil.dot(wt, i * m, wt, j * m, m);
            if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
            any = true;
            touched[i] = touched[j] = true;
            // Rotation that zeroes the (i, j) entry of the 2x2 Gram [[alpha, gamma], [gamma, beta]].
            double zeta = (beta - alpha) / (2 * gamma);
            double t = Math.copySign(1.0, zeta) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
            double cs = 1 / Math.sqrt(1 + t * t);
            double sn = cs * t;
            // (w_i, w_j) <- (c w_i - s w_j, s w_i + c w_j); same for the rows of V^T.
            DecompUtil.rotate(wt, i * m, j * m, m, cs, sn);
            DecompUtil.rotate(vt, i * n, j * n, n, cs, sn);
            norm2[i] = DecompUtil.dot(wt, i * m, wt, i * m, m);
            norm2[j] = DecompUtil.dot(wt, j * m, wt, j * m, m);
        }
        return any;
    }

    /**
     * u [m, k] = (ut)^T, except that the columns flagged zero (rows of ut left empty) get unit
     * vectors orthogonal to all others: random rows, projected off the kept ones twice, then
     * orthonormalised by two rounds of Cholesky QR (all through GEMM / Cholesky / triangular solves).
     */
    private static void completeBasis(double[] u, int m, int k, double[] ut, boolean[] zero) {
        int q = 0;
        for (boolean f : zero) if (f) q++;
        int r = k - q;
        double[] kept = new double[r * m];
        for (int p = 0, i = 0; p < k; p++) if (!zero[p]) System.arraycopy(ut, p * m, kept, (i++) * m, m);
        SplittableRandom rnd = new SplittableRandom(0x5EED5EEDL + m * 31L + k);
        double[] g = new double[q * m];
        double[] coef = new double[q * Math.max(1, r)];
        double[] gram = new double[q * q];
        for (int attempt = 0; ; attempt++) {
            if (attempt == 8) throw new ArithmeticException("could not complete an orthonormal basis");
            for (int i = 0; i < g.length; i++) g[i] = rnd.nextDouble() - 0.5;
            boolean ok = true;
            for (int round = 0; round < 2 && ok; round++) {
                if (r > 0) {
                    for (int pass = 0; pass < 2; pass++) { // g -= (g kept^T) kept
                        Gemm.dgemm(false, true, q, r, m, 1, g, 0, m, kept, 0, m, 0, coef, 0, r);
                        Gemm.dgemm(false, false, q, m, r, -1, coef, 0, r, kept, 0, m, 1, g, 0, m);
                    }
                }
                // g <- L^-1 g with L L^T = g g^T: orthonormal rows.
                Arrays.fill(gram, 0);
                DgemmDriver.gemm(false, true, q, q, m, 1, g, 0, m, g, 0, m, 0, gram, 0, q, 0);
                ok = Cholesky.factorLower(gram, 0, q, q) == Cholesky.OK;
                if (ok) Triangular.solveLeft(false, false, q, m, gram, 0, q, g, 0, m);
            }
            if (ok) break;
        }
        for (int p = 0, i = 0; p < k; p++) {
            if (!zero[p]) continue;
            System.arraycopy(g, (i++) * m, ut, p * m, m);
        }
        for (int p = 0; p < k; p++) {
            for (int i = 0; i < m; i++) u[i * k + p] = ut[p * m + i];
        }
    }
}
