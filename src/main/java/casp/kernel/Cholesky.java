package casp.kernel;

/**
 * Cholesky factorisation of symmetric positive definite matrices (row-major), in double and float,
 * and the inverse Cholesky factor GPTQ needs.
 *
 * <p>Blocked right-looking algorithm: factor a diagonal block of NB columns with a short Crout
 * loop, solve the panel below it against that block (transposed, {@link Triangular#solveLeft}), and subtract
 * the panel's outer product from the trailing matrix with the GEMM driver restricted to the lower
 * triangle (a SYRK). Failure (a pivot that is not positive, or NaN) is reported by returning its
 * index; nothing is ever divided by a non-positive pivot, so no NaN is produced.
 */
public final class Cholesky {
    private Cholesky() {}

    /** Returned by the factorisations on success. */
    public static final int OK = -1;

    /**
     * Outer block: the trailing update streams the whole trailing matrix through memory once per
     * block, so the block is wide; its diagonal block is factored the same way with {@link #NB_INNER}.
     */
    static final int NB = 192;
    static final int NB_INNER = 32;

    /**
     * Overwrites the lower triangle of the n x n matrix A (row-major at a[off + i * lda + j]) with
     * L such that A = L L^T. Only the lower triangle (diagonal included) is read; the strict upper
     * triangle is neither read nor written.
     *
     * @return {@link #OK}, or the index of the first pivot that is not positive (A is not positive
     *         definite to working precision); A's lower triangle is then partly overwritten
     */
    public static int factorLower(double[] a, int off, int lda, int n) {
        return blocked(a, off, lda, n, NB);
    }

    private static int blocked(double[] a, int off, int lda, int n, int nb) {
        for (int j = 0; j < n; j += nb) {
            int jb = Math.min(nb, n - j);
            int d = off + j * lda + j;
            int info = jb > NB_INNER ? blocked(a, d, lda, jb, NB_INNER) : crout(a, d, lda, jb);
            if (info != OK) return j + info;
            int rest = n - j - jb;
            if (rest > 0) {
                int panel = off + (j + jb) * lda + j;
                // The panel A21 [rest, jb] is solved transposed: Y = A21^T [jb, rest] has long rows, so
                // Y <- L11^-1 Y runs as long axpys instead of short dot products.
                double[] y = new double[jb * rest];
                for (int r = 0; r < rest; r++) {
                    for (int c = 0; c < jb; c++) y[c * rest + r] = a[panel + r * lda + c];
                }
                TriangularD.solveLeft(false, false, jb, rest, a, d, lda, y, 0, rest);
                for (int r = 0; r < rest; r++) {
                    for (int c = 0; c < jb; c++) a[panel + r * lda + c] = y[c * rest + r];
                }
                // A22 <- A22 - A21 A21^T = A22 - Y^T Y, lower triangle only
                DgemmDriver.gemm(true, false, rest, rest, jb, -1, y, 0, rest, y, 0, rest,
                        1, a, panel + jb, lda, 0);
            }
        }
        return OK;
    }

    /** Float twin of {@link #factorLower(double[], int, int, int)}, computed in float. */
    public static int factorLower(float[] a, int off, int lda, int n) {
        return blocked(a, off, lda, n, NB);
    }

    private static int blocked(float[] a, int off, int lda, int n, int nb) {
        for (int j = 0; j < n; j += nb) {
            int jb = Math.min(nb, n - j);
            int d = off + j * lda + j;
            int info = jb > NB_INNER ? blocked(a, d, lda, jb, NB_INNER) : crout(a, d, lda, jb);
            if (info != OK) return j + info;
            int rest = n - j - jb;
            if (rest > 0) {
                int panel = off + (j + jb) * lda + j;
                float[] y = new float[jb * rest];
                for (int r = 0; r < rest; r++) {
                    for (int c = 0; c < jb; c++) y[c * rest + r] = a[panel + r * lda + c];
                }
                TriangularF.solveLeft(false, false, jb, rest, a, d, lda, y, 0, rest);
                for (int r = 0; r < rest; r++) {
                    for (int c = 0; c < jb; c++) a[panel + r * lda + c] = y[c * rest + r];
                }
                SgemmDriver.gemm(true, false, rest, rest, jb, -1f, y, 0, rest, y, 0, rest,
                        1f, a, panel + jb, lda, 0);
            }
        }
        return OK;
    }

    /** Unblocked Crout factorisation of a small diagonal block, row by row. */
    private static int crout(double[] a, int off, int lda, int n) {
        for (int i = 0; i < n; i++) {
            int ri = off + i * lda;
            for (int j = 0; j < i; j++) {
                int rj = off + j * lda;
                a[ri + j] = (a[ri + j] - Blas1.dot(j, a, ri, a, rj)) / a[rj + j];
            }
            double s = a[ri + i] - Blas1.dot(i, a, ri, a, ri);
            if (!(s > 0)) return i; // also catches NaN
            a[ri + i] = Math.sqrt(s);
        }
        return OK;
    }

    private static int crout(float[] a, int off, int lda, int n) {
        for (int i = 0; i < n; i++) {
            int ri = off + i * lda;
            for (int j = 0; j < i; j++) {
                int rj = off + j * lda;
                a[ri + j] = (a[ri + j] - Blas1.dot(j, a, ri, a, rj)) / a[rj + j];
            }
            float s = a[ri + i] - Blas1.dot(i, a, ri, a, ri);
            if (!(s > 0)) return i;
            a[ri + i] = (float) Math.sqrt(s);
        }
        return OK;
    }

    /**
     * The upper triangular U with U^T U = H^-1, for symmetric positive definite H (the "Hinv" of
     * GPTQ; torch: {@code cholesky(cholesky_inverse(cholesky(H)), upper=True)}). Only the lower
     * triangle of H is read and H is not modified. U is written to the upper triangle of u (its
     * strict lower triangle is set to zero); u may not overlap h.
     *
     * <p>Method: with J the reversal permutation, factor J H J = L' L'^T; then H = Ubar Ubar^T with
     * Ubar = J L' J upper triangular, so H^-1 = Ubar^-T Ubar^-1 and U = Ubar^-1 = J L'^-1 J. One
     * Cholesky and one triangular inverse (n^3/3 + n^3/3 flops) instead of the three factorisations of
     * the torch recipe; U is the same matrix (the Cholesky factor with positive diagonal is unique).
     *
     * @return {@link #OK}, or the index (in H's numbering) of a pivot that failed: H is not positive
     *         definite; u is then unspecified but free of NaN produced by this call
     */
    public static int choleskyInverseUpper(double[] h, int offH, int ldh, int n, double[] u, int offU, int ldu) {
        double[] r = new double[n * n];
        // r = J H J, lower triangle: r[i][j] = H[n-1-i][n-1-j] for j <= i, read from H's lower triangle.
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) r[i * n + j] = h[offH + (n - 1 - j) * ldh + (n - 1 - i)];
        }
        int info = factorLower(r, 0, n, n);
        if (info != OK) {
            for (int i = 0; i < n; i++) java.util.Arrays.fill(u, offU + i * ldu, offU + i * ldu + n, 0);
            return n - 1 - info;
        }
        TriangularD.invertLower(n, r, 0, n);
        // U[i][j] = Linv'[n-1-i][n-1-j] for j >= i
        for (int i = 0; i < n; i++) {
            int ui = offU + i * ldu;
            for (int j = 0; j < i; j++) u[ui + j] = 0;
            for (int j = i; j < n; j++) u[ui + j] = r[(n - 1 - i) * n + (n - 1 - j)];
        }
        return OK;
    }

    /**
     * {@link #choleskyInverseUpper(double[], int, int, int, double[], int, int)} in place: h, a full
     * symmetric n x n matrix (row-major, both triangles), is replaced by U (zero below the
     * diagonal). It saves the two n x n workspaces of the copying version, which for GPTQ's widest
     * Hessian (11008 inputs of a 7B MLP) are 969 MB each. J H J of a square row-major matrix is the
     * array reversed, and so is J L'^-1 J. On a failed pivot (returned as there) h holds zeros.
     */
    public static int choleskyInverseUpperInPlace(double[] h, int n) {
        if (h.length < (long) n * n) throw new IllegalArgumentException("h holds fewer than " + n + " x " + n + " values");
        reverse(h, n * n); // J H J
        int info = factorLower(h, 0, n, n);
        if (info != OK) {
            java.util.Arrays.fill(h, 0, n * n, 0);
            return n - 1 - info;
        }
        TriangularD.invertLower(n, h, 0, n);
        reverse(h, n * n); // U = J L'^-1 J; below its diagonal lies what was above L's: cleared
        for (int i = 1; i < n; i++) java.util.Arrays.fill(h, i * n, i * n + i, 0);
        return OK;
    }

    private static void reverse(double[] a, int len) {
        for (int i = 0, j = len - 1; i < j; i++, j--) {
            double t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }

    /**
     * Float input and output version of {@link #choleskyInverseUpper(double[], int, int, int, double[], int, int)};
     * the factorisation and inverse run in double, as GPTQ's conditioning needs.
     */
    public static int choleskyInverseUpper(float[] h, int offH, int ldh, int n, float[] u, int offU, int ldu) {
        double[] hd = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) hd[i * n + j] = h[offH + i * ldh + j];
        }
        double[] ud = new double[n * n];
        int info = choleskyInverseUpper(hd, 0, n, n, ud, 0, n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) u[offU + i * ldu + j] = (float) ud[i * n + j];
        }
        return info;
    }
}
