package casp.kernel;

import java.util.SplittableRandom;

/**
 * Randomized truncated SVD (Halko, Martinsson and Tropp 2011, ALGORITHMS.md section 3):
 * A [m, n] ~ U [m, r] diag(S) Vt [r, n].
 *
 * <p>Steps, with l = r + oversample sample columns:
 * <ol>
 *   <li>Y = A Omega with a seeded Gaussian test matrix Omega [n, l]; orthonormalise Y.
 *   <li>q power iterations, re-orthonormalising after every product:
 *       Z = orth(A^T Y), Y = orth(A Z). Each lets the spectrum decay one more power.
 *   <li>B^T = A^T Y [n, l] (B = Y^T A is the projection of A on the sampled range).
 *   <li>Small dense problem: the eigen-decomposition (float64) of B B^T = E diag(lambda) E^T gives
 *       B = E diag(sqrt(lambda)) (E^T B / sqrt(lambda)): S = sqrt(lambda), U = Y E, Vt = E^T B / S.
 * </ol>
 * Everything of size m or n is a GEMM or SYRK call on whole panels ({@link Gemm#sgemm},
 * {@link Syrk#ssyrkLower}); orthonormalisation is CholeskyQR2 through the same kernels
 * ({@link Qr#orthonormalize}). The Gram route in step 4 loses
 * relative accuracy on singular values below about 3e-4 * S[0] (float32 Gram); those directions
 * contribute less than 1e-7 of ||A||^2 to the approximation error.
 */
public final class RandomizedSvd {
    private RandomizedSvd() {}

    /** Truncated SVD factors: U [m, rank], S [rank] descending, Vt [rank, n], all row-major. */
    public static final class Result {
        public final int m, n, rank;
        public final float[] u;
        public final float[] s;
        public final float[] vt;

        Result(int m, int n, int rank, float[] u, float[] s, float[] vt) {
            this.m = m;
            this.n = n;
            this.rank = rank;
            this.u = u;
            this.s = s;
            this.vt = vt;
        }
    }

    /**
     * Rank-{@code rank} randomized SVD of a [m, n] (row-major; not modified).
     *
     * @param oversample extra sample columns p (10-20 is typical); the sample width is
     *                   min(rank + oversample, m, n)
     * @param powerIters power iterations q (2-4 is typical; 0 for a flat-spectrum-insensitive sketch)
     * @param seed       seed of the Gaussian test matrix (same seed, same result)
     */
    public static Result compute(float[] a, int m, int n, int rank, int oversample, int powerIters, long seed) {
        if (m <= 0 || n <= 0 || a.length < (long) m * n) throw new IllegalArgumentException("bad shape m=" + m + " n=" + n);
        if (rank <= 0 || rank > Math.min(m, n)) {
            throw new IllegalArgumentException("rank must be in [1, min(m, n)] = [1, " + Math.min(m, n) + "], got " + rank);
        }
        if (oversample < 0) throw new IllegalArgumentException("oversample must be >= 0, got " + oversample);
        if (powerIters < 0) throw new IllegalArgumentException("powerIters must be >= 0, got " + powerIters);
        int l = (int) Math.min((long) rank + oversample, Math.min(m, n));

        float[] y = new float[m * l];
        float[] z = new float[n * l];
        float[] scratch = new float[Math.max(m, n) * l];

        float[] omega = gaussianMatrix(n, l, seed);
        Gemm.sgemm(false, false, m, l, n, 1f, a, 0, n, omega, 0, l, 0f, y, 0, l);
        omega = null;
        Qr.orthonormalize(y, m, l, scratch);
        for (int it = 0; it < powerIters; it++) {
            Gemm.sgemm(true, false, n, l, m, 1f, a, 0, n, y, 0, l, 0f, z, 0, l);
            Qr.orthonormalize(z, n, l, scratch);
            Gemm.sgemm(false, false, m, l, n, 1f, a, 0, n, z, 0, l, 0f, y, 0, l);
            Qr.orthonormalize(y, m, l, scratch);
        }
        // z = B^T = A^T Y [n, l]; C = B B^T = z^T z [l, l].
        Gemm.sgemm(true, false, n, l, m, 1f, a, 0, n, y, 0, l, 0f, z, 0, l);
        float[] c = new float[l * l];
        Syrk.ssyrkLower(n, l, 1f, z, 0, l, 0f, c, 0, l); // lower triangle only, all that is read below
        double[] cd = new double[l * l];
        for (int i = 0; i < l; i++) {
            for (int j = 0; j <= i; j++) cd[i * l + j] = c[i * l + j];
        }
        SymmetricEigen.Result eig = SymmetricEigen.decompose(cd, l);

        float[] s = new float[rank];
        float[] er = new float[l * rank]; // E[:, :rank]
        for (int i = 0; i < l; i++) {
            for (int j = 0; j < rank; j++) er[i * rank + j] = (float) eig.vectors[i * l + j];
        }
        for (int j = 0; j < rank; j++) s[j] = (float) Math.sqrt(Math.max(eig.values[j], 0));
        float[] u = new float[m * rank];
        Gemm.sgemm(false, false, m, rank, l, 1f, y, 0, l, er, 0, rank, 0f, u, 0, rank);
        float[] vt = new float[rank * n];
        Gemm.sgemm(true, true, rank, n, l, 1f, er, 0, rank, z, 0, l, 0f, vt, 0, n);
        float smallest = s[0] * 1e-30f;
        for (int j = 0; j < rank; j++) {
            // A zero singular value has no defined right vector; its row stays zero (U S Vt unaffected).
            float inv = s[j] > smallest ? 1f / s[j] : 0f;
            if (inv == 0f) s[j] = 0f;
            int o = j * n;
            for (int k = 0; k < n; k++) vt[o + k] *= inv;
        }
        return new Result(m, n, rank, u, s, vt);
    }

    /** Rows per independently seeded block of the test matrix: the result does not depend on threads. */
    private static final int GAUSS_BLOCK = 64;

    /**
     * Standard normal [rows, cols] matrix, filled in parallel; the same seed gives the same matrix
     * whatever the number of threads (rows are seeded in fixed blocks).
     */
    public static float[] gaussianMatrix(int rows, int cols, long seed) {
        if (rows < 0 || cols < 0 || (long) rows * cols > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("bad shape " + rows + "x" + cols);
        float[] g = new float[rows * cols];
        int blocks = (rows + GAUSS_BLOCK - 1) / GAUSS_BLOCK;
        int tasks = Math.min(blocks, Parallel.threads() * 4);
        Parallel.forRange(tasks, t -> {
            for (int b = t; b < blocks; b += tasks) {
                SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + b);
                int end = Math.min(rows, (b + 1) * GAUSS_BLOCK) * cols;
                for (int i = b * GAUSS_BLOCK * cols; i < end; i += 2) {
                    // Box-Muller: two normals from two uniforms in (0, 1].
                    double u1 = 1.0 - rnd.nextDouble();
                    double u2 = rnd.nextDouble();
                    double rad = Math.sqrt(-2.0 * Math.log(u1));
                    double ang = 2.0 * Math.PI * u2;
                    g[i] = (float) (rad * Math.cos(ang));
                    if (i + 1 < end) g[i + 1] = (float) (rad * Math.sin(ang));
                }
            }
        });
        return g;
    }
}
