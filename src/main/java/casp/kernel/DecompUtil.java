package casp.kernel;

/**
 * Small float64 building blocks shared by the decompositions of this package (QR, eigen, SVD):
 * dot / axpy / plane rotation on contiguous rows (vectorised in {@link DecompSimd}), and a small dense Cholesky and
 * triangular inverse used by CholeskyQR.
 */
final class DecompUtil {
    private DecompUtil() {}

    private static final boolean VECTOR = VectorGate.VECTOR;

    /** Unit roundoff of float64 (2^-52 / 2). */
    static final double EPS64 = Math.ulp(1.0);

    /** sum_i a[oa+i] * b[ob+i] for i in [0, n). */
    static double dot(double[] a, int oa, double[] b, int ob, int n) {
        if (VECTOR) return DecompSimd.dot(a, oa, b, ob, n);
        double s = 0;
        for (int i = 0; i < n; i++) s += a[oa + i] * b[ob + i];
        return s;
    }

    /** y[oy+i] += alpha * x[ox+i] for i in [0, n). */
    static void axpy(double alpha, double[] x, int ox, double[] y, int oy, int n) {
        if (VECTOR) {
            DecompSimd.axpy(alpha, x, ox, y, oy, n);
            return;
        }
        for (int i = 0; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }

    /** x[ox+i] *= alpha for i in [0, n). */
    static void scale(double alpha, double[] x, int ox, int n) {
        if (VECTOR) {
            DecompSimd.scale(alpha, x, ox, n);
            return;
        }
        for (int i = 0; i < n; i++) x[ox + i] *= alpha;
    }

    /** Plane rotation of two rows: (x, y) <- (c x - s y, s x + c y), elementwise over n entries. */
    static void rotate(double[] a, int ox, int oy, int n, double c, double s) {
        if (VECTOR) {
            DecompSimd.rotate(a, ox, oy, n, c, s);
            return;
        }
        for (int i = 0; i < n; i++) {
            double x = a[ox + i], y = a[oy + i];
            a[ox + i] = c * x - s * y;
            a[oy + i] = s * x + c * y;
        }
    }

    /**
     * Rows [r0, r1) of y += A x, A symmetric and stored in its lower triangle from column c0 on
     * (row r holds a[r * lda + c] for c0 <= c <= r): each row adds its dot product to y[r] and its
     * mirrored upper part to y[c0..r). x and y are indexed like the columns.
     */
    static void symvLowerRows(double[] a, int lda, int c0, int r0, int r1, double[] x, double[] y) {
        if (VECTOR) {
            DecompSimd.symvLowerRows(a, lda, c0, r0, r1, x, y);
            return;
        }
        for (int r = r0; r < r1; r++) {
            int ar = r * lda;
            double xr = x[r], s = 0;
            for (int c = c0; c < r; c++) {
                double av = a[ar + c];
                s += av * x[c];
                y[c] += av * xr;
            }
            y[r] += s + a[ar + r] * xr;
        }
    }

    /**
     * Terms of the secular equation 1 + sum w_i / (d_i - tau): out[0] = sum w[i] / (d[row+i] - tau)
     * and out[1] = sum w[i] / (d[row+i] - tau)^2 (its derivative) over i in [from, to).
     */
    static void secularSums(double[] d, int row, double[] w, int from, int to, double tau, double[] out) {
        if (VECTOR) {
            DecompSimd.secularSums(d, row, w, from, to, tau, out);
            return;
        }
        double f = 0, df = 0;
        for (int i = from; i < to; i++) {
            double r = 1 / (d[row + i] - tau);
            double q = w[i] * r;
            f += q;
            df += q * r;
        }
        out[0] = f;
        out[1] = df;
    }

    /**
     * In-place lower Cholesky factor of the symmetric positive definite a [n, n] (row-major; only
     * the lower triangle is read, the strict upper triangle is zeroed). Returns false (a partly
     * overwritten) when a pivot is not positive, so callers can fall back instead of getting NaN.
     * TODO: switch to the shared blocked casp.kernel Cholesky when it lands; n here is <= ~1000.
     */
    static boolean choleskyLower(double[] a, int n) {
        for (int i = 0; i < n; i++) {
            int ri = i * n;
            for (int j = 0; j <= i; j++) {
                int rj = j * n;
                double s = a[ri + j] - dot(a, ri, a, rj, j);
                if (i == j) {
                    if (!(s > 0) || Double.isInfinite(s)) return false;
                    a[ri + i] = Math.sqrt(s);
                } else {
                    a[ri + j] = s / a[rj + j];
                }
            }
            for (int j = i + 1; j < n; j++) a[ri + j] = 0;
        }
        return true;
    }

    /**
     * Inverse of a lower-triangular l [n, n] (row-major, non-zero diagonal), returned as a new
     * lower-triangular array. Row i of X = L^-1 is (e_i - sum_{k<i} L[i,k] X[k,:]) / L[i,i].
     * TODO: switch to the shared casp.kernel triangular inverse when it lands.
     */
    static double[] invertLower(double[] l, int n) {
        double[] x = new double[n * n];
        for (int i = 0; i < n; i++) {
            int ri = i * n;
            for (int k = 0; k < i; k++) {
                double lik = l[ri + k];
                if (lik != 0) axpy(-lik, x, k * n, x, ri, k + 1);
            }
            x[ri + i] += 1.0;
            scale(1.0 / l[ri + i], x, ri, i + 1);
        }
        return x;
    }

    /** Transpose of a [rows, cols] row-major, as [cols, rows]. */
    static double[] transpose(double[] a, int rows, int cols) {
        double[] t = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        }
        return t;
    }
}
