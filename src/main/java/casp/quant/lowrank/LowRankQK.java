package casp.quant.lowrank;

import casp.kernel.Blas1;
import casp.kernel.Cholesky;
import casp.kernel.DenseSvd;
import casp.kernel.Gemm;
import casp.kernel.Qr;
import casp.kernel.RandomizedSvd;
import casp.kernel.SymmetricEigen;
import casp.kernel.Triangular;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Data-aware low-rank approximation of a projection (W_q or W_k), ALGORITHMS.md section 3
 * (SVD-LLM's truncation-aware whitening), one step per method:
 * <ol>
 *   <li>{@link Whitening#of}: Cholesky G = L L^T of the input statistics G = sum x x^T (float64);
 *       on failure the diagonal is raised (by |lambda_min| + 1e-6 mean(diag G), then by growing
 *       multiples of mean(diag G)) and the amount is reported.</li>
 *   <li>{@link #decompose}: SVD of W L: exact (one-sided Jacobi, {@link DenseSvd}) when
 *       min(m, n) is small, randomized ({@link RandomizedSvd}) otherwise, its subspace refined
 *       by a float64 Rayleigh-Ritz step.</li>
 *   <li>{@link Decomposition#factors}: A = U_r S_r^1/2 [m, r], B = S_r^1/2 V_r^T L^-1 [r, n] (a
 *       triangular solve, no explicit inverse), so W' = A B.</li>
 *   <li>{@link Decomposition#truncationLoss}: ||(W - A B) X^T||_F^2 = tr(dW G dW^T) = ||W L||_F^2
 *       - sum_{i <= r} s_i^2, for every rank at once. The identity also holds for the randomized SVD:
 *       with Q the orthonormal sample basis, W L - U_r S_r V_r^T splits into the orthogonal parts
 *       (I - Q Q^T) W L and Q (Q^T W L - its rank-r SVD).</li>
 * </ol>
 * Rank rules: {@link #rankForRatio} (the paper's), {@link #rankForThreshold} (per layer, from the
 * exact loss) and {@link #splitRankBudget} (the best split of a total rank over layers, optionally
 * with per-layer weights on the losses).
 *
 * <p>Units: the losses are in the units of G. With G = sum over N tokens of x x^T they are the
 * squared output error summed over the tokens; with GPTQ's H = (2/N) G they scale by 2/N. The
 * factors do not depend on the scale of G except for the balance between A and B (A scales with
 * c^1/4, B with c^-1/4 when G is multiplied by c); the product does not change.
 */
public final class LowRankQK {
    private LowRankQK() {}

    /**
     * @param oversample   extra sample columns of the randomized SVD (Halko et al.: 10-20)
     * @param powerIters   power iterations of the randomized SVD (2-4)
     * @param seed         seed of the randomized SVD's test matrix
     * @param exactMaxDim  use the exact SVD when min(m, n) is at most this (exact and cheap there)
     */
    public record Options(int oversample, int powerIters, long seed, int exactMaxDim) {
        public Options {
            if (oversample < 0 || powerIters < 0) throw new IllegalArgumentException("oversample and powerIters must be >= 0");
        }

        public static Options defaults() {
            return new Options(16, 3, 0x5EEDCA5EL, 256);
        }

        public Options withExactMaxDim(int d) { return new Options(oversample, powerIters, seed, d); }
        public Options withSeed(long s) { return new Options(oversample, powerIters, s, exactMaxDim); }
    }

    /** The paper's rule: r = floor(m n rho / (m + n)), at least 1 and at most min(m, n). */
    public static int rankForRatio(int m, int n, double rho) {
        if (!(rho > 0) || rho > 1) throw new IllegalArgumentException("rank ratio must be in (0, 1], got " + rho);
        long r = (long) Math.floor((double) m * n * rho / (m + n));
        return (int) Math.max(1, Math.min(Math.min(m, n), r));
    }

    /**
     * The smallest rank whose relative whitened tail energy loss(r) / ||W L||^2 is at most
     * maxRelativeLoss, searched among the ranks the decomposition knows; if none qualifies, the
     * largest known rank.
     */
    public static int rankForThreshold(Decomposition d, double maxRelativeLoss) {
        if (!(maxRelativeLoss >= 0)) throw new IllegalArgumentException("threshold must be >= 0, got " + maxRelativeLoss);
        for (int r = 1; r < d.knownRanks(); r++) {
            if (d.relativeLoss(r) <= maxRelativeLoss) return r;
        }
        return d.knownRanks();
    }

    /**
     * The split r_1 + ... + r_L = totalRank (each r_l in [minRank, knownRanks_l]) minimising
     * sum_l loss_l(r_l). Exact by a greedy choice: raising r_l by one lowers loss_l by s_{l, r_l+1}^2,
     * and these gains are non-increasing in r_l (singular values are sorted), so each loss_l is convex
     * and decreasing in r_l; the optimum then takes the totalRank largest gains over all layers,
     * which are prefixes of each layer's sorted list (a merge of sorted lists). Meant for layers of
     * one shape (all W_q, or all W_k), where a unit of rank costs the same everywhere; with
     * different costs per unit rank the problem becomes a knapsack and greedy is not exact.
     *
     * @throws IllegalArgumentException if totalRank is outside [L minRank, sum knownRanks]
     */
    public static int[] splitRankBudget(List<Decomposition> layers, int totalRank, int minRank) {
        double[] ones = new double[layers.size()];
        Arrays.fill(ones, 1);
        return splitRankBudget(layers, totalRank, minRank, ones);
    }

    /**
     * {@link #splitRankBudget(List, int, int)} minimising the weighted sum sum_l weight_l loss_l(r_l)
     * (weights >= 0). Still exact by the same greedy: a constant weight keeps each layer's gains
     * sorted.
     */
    public static int[] splitRankBudget(List<Decomposition> layers, int totalRank, int minRank, double[] weight) {
        int L = layers.size();
        if (weight.length != L) throw new IllegalArgumentException(weight.length + " weights for " + L + " layers");
        for (double w : weight) if (!(w >= 0)) throw new IllegalArgumentException("weights must be >= 0, got " + w);
        int[] r = new int[L];
        long lo = (long) L * minRank, hi = 0;
        for (Decomposition d : layers) {
            if (d.knownRanks() < minRank) throw new IllegalArgumentException("a layer knows only " + d.knownRanks() + " ranks < minimum " + minRank);
            hi += d.knownRanks();
        }
        if (totalRank < lo || totalRank > hi) {
            throw new IllegalArgumentException("total rank " + totalRank + " outside [" + lo + ", " + hi + "]");
        }
        Arrays.fill(r, minRank);
        for (long left = totalRank - lo; left > 0; left--) {
            int best = -1;
            double gain = -1;
            for (int l = 0; l < L; l++) {
                Decomposition d = layers.get(l);
                if (r[l] >= d.knownRanks()) continue;
                double g = weight[l] * d.sigma[r[l]] * d.sigma[r[l]];
                if (g > gain) {
                    gain = g;
                    best = l;
                }
            }
            r[best]++;
        }
        return r;
    }

    /** The whitening factor L (lower triangular, G + damping I = L L^T) of the statistics G. */
    public static final class Whitening {
        public final int n;
        /** L row-major [n, n], strict upper triangle zero. */
        final double[] l;
        /** What was added to the diagonal of G before the factorisation succeeded (0: nothing). */
        public final double damping;
        /** damping / mean(diag G) (0 when G's diagonal is 0). */
        public final double relativeDamping;
        /** Factorisation attempts (1: G was positive definite as given). */
        public final int attempts;

        private Whitening(int n, double[] l, double damping, double relativeDamping, int attempts) {
            this.n = n;
            this.l = l;
            this.damping = damping;
            this.relativeDamping = relativeDamping;
            this.attempts = attempts;
        }

        /** Largest n for which a failed factorisation looks up lambda_min by an eigen-decomposition. */
        private static final int EIGEN_MAX_N = 1024;
        private static final int MAX_ATTEMPTS = 30;

        /**
         * Factors G ([n, n] row-major, symmetric, float64; not modified). Retries with a raised
         * diagonal when G is not positive definite to working precision (dead inputs, fewer tokens
         * than inputs): first |lambda_min| + 1e-6 mean(diag G) (for n up to 1024), then 1e-6,
         * 1e-5, ... times mean(diag G).
         *
         * @throws ArithmeticException if G has a non-finite entry or no damping helps
         */
        public static Whitening of(double[] g, int n) {
            if (g.length < (long) n * n) throw new IllegalArgumentException("G must be " + n + " x " + n);
            double mean = 0;
            for (int i = 0; i < n; i++) mean += g[i * n + i];
            mean /= n;
            if (!Double.isFinite(mean)) throw new ArithmeticException("input statistics hold a non-finite value");
            double unit = mean > 0 ? mean : 1;
            double damp = 0;
            double[] l = new double[n * n];
            for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
                for (int i = 0; i < n; i++) {
                    System.arraycopy(g, i * n, l, i * n, i + 1);
                    Arrays.fill(l, i * n + i + 1, (i + 1) * n, 0);
                    l[i * n + i] += damp;
                }
                if (Cholesky.factorLower(l, 0, n, n) == Cholesky.OK) {
                    return new Whitening(n, l, damp, mean > 0 ? damp / mean : 0, attempt);
                }
                if (attempt == 1 && n <= EIGEN_MAX_N) {
                    SymmetricEigen.Result e = SymmetricEigen.decompose(g, n);
                    double lmin = e.values[n - 1];
                    damp = Math.abs(Math.min(lmin, 0)) + 1e-6 * unit;
                } else {
                    damp = Math.max(damp * 10, 1e-6 * unit);
                }
            }
            throw new ArithmeticException("input statistics are not positive definite even after adding " + damp + " to the diagonal");
        }

        /** L as a new row-major [n, n] array. */
        public double[] factor() {
            return l.clone();
        }
    }

    /** The whitened SVD of one weight: its singular values and enough triplets to build factors. */
    public static final class Decomposition {
        public final int m, n;
        /** Whether the singular values come from the exact SVD (then all min(m, n) are known). */
        public final boolean exact;
        /** Known singular values of W L, descending: min(m, n) when exact, else the computed rank. */
        final double[] sigma;
        /** ||W L||_F^2 = tr(W G W^T): the loss at rank 0. */
        public final double totalEnergy;
        /** Triplets kept for {@link #factors}: U [m, kept], Vt [kept, n] (float64). */
        private final int kept;
        private final double[] u, vt;
        public final Whitening whitening;

        private Decomposition(int m, int n, boolean exact, double[] sigma, double totalEnergy, int kept, double[] u,
                              double[] vt, Whitening whitening) {
            this.m = m;
            this.n = n;
            this.exact = exact;
            this.sigma = sigma;
            this.totalEnergy = totalEnergy;
            this.kept = kept;
            this.u = u;
            this.vt = vt;
            this.whitening = whitening;
        }

        /** Number of singular values known: losses are exact for ranks 0 .. knownRanks(). */
        public int knownRanks() {
            return sigma.length;
        }

        /** Largest rank {@link #factors} can build. */
        public int maxFactorRank() {
            return kept;
        }

        /**
         * ||(W - A_r B_r) X^T||_F^2 = tr(dW G dW^T) at rank r (in G's units; G damped if it had to be).
         * Summed from the discarded singular values when all are known, else ||W L||^2 minus the
         * kept ones (clamped at 0 against rounding).
         */
        public double truncationLoss(int r) {
            if (r < 0 || r > sigma.length) throw new IllegalArgumentException("rank " + r + " outside [0, " + sigma.length + "]");
            double s = 0;
            if (exact) {
                for (int i = sigma.length - 1; i >= r; i--) s += sigma[i] * sigma[i];
                return s;
            }
            for (int i = 0; i < r; i++) s += sigma[i] * sigma[i];
            return Math.max(0, totalEnergy - s);
        }

        /** truncationLoss(r) / ||W L||^2 (0 for a zero W). */
        public double relativeLoss(int r) {
            return totalEnergy == 0 ? 0 : truncationLoss(r) / totalEnergy;
        }

        /** The factors at rank r (1 .. maxFactorRank()). */
        public Factors factors(int r) {
            if (r < 1 || r > kept) throw new IllegalArgumentException("rank " + r + " outside [1, " + kept + "]");
            double[] a = new double[m * r], b = new double[r * n];
            for (int j = 0; j < r; j++) {
                double h = Math.sqrt(sigma[j]);
                for (int i = 0; i < m; i++) a[i * r + j] = u[i * kept + j] * h;
                for (int c = 0; c < n; c++) b[j * n + c] = vt[j * n + c] * h;
            }
            // B = S^1/2 V^T L^-1: solve X L = S^1/2 V^T.
            Triangular.solveRight(false, false, r, n, whitening.l, 0, n, b, 0, n);
            return new Factors(m, n, r, toFloat(a), toFloat(b));
        }
    }

    /**
     * Whitens with G and decomposes W [m, n] (row-major, not modified), keeping up to maxRank
     * triplets for factors. Exact SVD when min(m, n) <= options.exactMaxDim() (all singular values
     * known), otherwise a randomized SVD of rank maxRank (losses known for ranks up to maxRank).
     */
    public static Decomposition decompose(float[] w, int m, int n, double[] g, int maxRank, Options opt) {
        return decompose(w, m, n, Whitening.of(g, n), maxRank, opt);
    }

    /** {@link #decompose(float[], int, int, double[], int, Options)} with a whitening computed once (q and k share G). */
    public static Decomposition decompose(float[] w, int m, int n, Whitening wh, int maxRank, Options opt) {
        if (m < 1 || n < 1 || w.length != (long) m * n) throw new IllegalArgumentException("W has " + w.length + " values, expected " + m + " x " + n);
        if (wh.n != n) throw new IllegalArgumentException("whitening is " + wh.n + " x " + wh.n + ", W has " + n + " inputs");
        int kmax = Math.min(m, n);
        int keep = Math.max(1, Math.min(maxRank, kmax));
        double[] wl = new double[m * n];
        double[] wd = new double[m * n];
        for (int i = 0; i < wd.length; i++) wd[i] = w[i];
        Gemm.dgemm(false, false, m, n, n, 1, wd, 0, n, wh.l, 0, n, 0, wl, 0, n);
        double total = Blas1.dot(wl.length, wl, 0, wl, 0);
        if (kmax <= opt.exactMaxDim()) {
            DenseSvd.Result s = DenseSvd.decompose(wl, m, n);
            double[] u = new double[m * keep];
            for (int i = 0; i < m; i++) System.arraycopy(s.u, i * s.k, u, i * keep, keep);
            double[] vt = Arrays.copyOf(s.vt, keep * n);
            return new Decomposition(m, n, true, s.s.clone(), total, keep, u, vt, wh);
        }
        // The randomized SVD (float) finds the subspace; a Rayleigh-Ritz step in float64 on it gives
        // singular triplets for which ||W L||^2 - sum s_i^2 is the loss to double precision.
        RandomizedSvd.Result s = RandomizedSvd.compute(toFloat(wl), m, n, keep, opt.oversample(), opt.powerIters(), opt.seed());
        double[] q = toDouble(s.u);
        Qr.householder(q, m, keep, null);
        double[] bq = new double[keep * n]; // Q^T W L
        Gemm.dgemm(true, false, keep, n, m, 1, q, 0, keep, wl, 0, n, 0, bq, 0, n);
        double[] c = new double[keep * keep];
        Gemm.dgemm(false, true, keep, keep, n, 1, bq, 0, n, bq, 0, n, 0, c, 0, keep);
        SymmetricEigen.Result e = SymmetricEigen.decompose(c, keep);
        double[] sigma = new double[keep];
        for (int j = 0; j < keep; j++) sigma[j] = Math.sqrt(Math.max(e.values[j], 0));
        double[] u = new double[m * keep], vt = new double[keep * n];
        Gemm.dgemm(false, false, m, keep, keep, 1, q, 0, keep, e.vectors, 0, keep, 0, u, 0, keep);
        Gemm.dgemm(true, false, keep, n, keep, 1, e.vectors, 0, keep, bq, 0, n, 0, vt, 0, n);
        for (int j = 0; j < keep; j++) {
            // A zero singular value has no right vector: its row stays zero (the product is unaffected).
            double inv = sigma[j] > 1e-300 ? 1 / sigma[j] : 0;
            for (int k = 0; k < n; k++) vt[j * n + k] *= inv;
        }
        return new Decomposition(m, n, false, sigma, total, keep, u, vt, wh);
    }

    /** Low-rank factors W' = A B: A [m, rank], B [rank, n], row-major float. */
    public record Factors(int m, int n, int rank, float[] a, float[] b) {
        public Factors {
            if (a.length != (long) m * rank || b.length != (long) rank * n) throw new IllegalArgumentException("factor shapes do not match");
        }

        /** A B as a new row-major [m, n] array. */
        public float[] product() {
            float[] w = new float[m * n];
            Gemm.sgemm(false, false, m, n, rank, 1f, a, 0, rank, b, 0, n, 0f, w, 0, n);
            return w;
        }

        /** Parameters stored: rank (m + n). */
        public long parameters() {
            return (long) rank * (m + n);
        }

        /**
         * A R and R^T B for a random orthogonal R [rank, rank] (Haar-distributed: QR of a Gaussian
         * with R's diagonal signs folded into Q). The product is unchanged; A's input B x is mixed,
         * so its Hessian B H B^T is no longer diagonal and GPTQ can compensate A's rounding errors.
         */
        public Factors rotated(long seed) {
            double[] q = randomOrthogonal(rank, seed);
            double[] ad = toDouble(a), bd = toDouble(b);
            double[] ar = new double[m * rank], br = new double[rank * n];
            Gemm.dgemm(false, false, m, rank, rank, 1, ad, 0, rank, q, 0, rank, 0, ar, 0, rank);
            Gemm.dgemm(true, false, rank, n, rank, 1, q, 0, rank, bd, 0, n, 0, br, 0, n);
            return new Factors(m, n, rank, toFloat(ar), toFloat(br));
        }
    }

    /** A Haar-random orthogonal [k, k] matrix (row-major). */
    public static double[] randomOrthogonal(int k, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] g = new double[k * k];
        for (int i = 0; i < g.length; i++) g[i] = gaussian(rnd);
        double[] r = new double[k * k];
        Qr.householder(g, k, k, r);
        for (int j = 0; j < k; j++) {
            if (r[j * k + j] < 0) for (int i = 0; i < k; i++) g[i * k + j] = -g[i * k + j];
        }
        return g;
    }

    private static double gaussian(SplittableRandom rnd) {
        double u1 = 1.0 - rnd.nextDouble(), u2 = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    public static float[] toFloat(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) f[i] = (float) a[i];
        return f;
    }

    public static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }
}
