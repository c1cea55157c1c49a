package casp.kernel;

/**
 * Small float64 building blocks shared by the decompositions of this package (QR, eigen, SVD):
 * dot / axpy on contiguous rows (delegating to {@link Blas1}), the plane rotation of two rows
 * (vectorised in {@link DecompSimd}) and a transpose. Factorisations live in their own kernels
 * ({@link Cholesky}, {@link Triangular}).
 */
final class DecompUtil {
    private DecompUtil() {}

    private static final boolean VECTOR = VectorSupport.enabled();

    /** Unit roundoff of float64 (2^-52 / 2). */
    static final double EPS64 = Math.ulp(1.0);

    /** sum_i a[oa+i] * b[ob+i] for i in [0, n) (the shared {@link Blas1#dot}). */
    static double dot(double[] a, int oa, double[] b, int ob, int n) {
        return Blas1.dot(n, a, oa, b, ob);
    }

    /** y[oy+i] += alpha * x[ox+i] for i in [0, n) (the shared {@link Blas1#axpy}). */
    static void axpy(double alpha, double[] x, int ox, double[] y, int oy, int n) {
        Blas1.axpy(n, alpha, x, ox, y, oy);
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
        int i = from;
        double f = 0, df = 0;
        if (VECTOR) { // whole vectors there, the tail here
            i = DecompSimd.secularSums(d, row, w, from, to, tau, out);
            f = out[0];
            df = out[1];
        }
        for (; i < to; i++) {
            double r = 1 / (d[row + i] - tau);
            double q = w[i] * r;
            f += q;
            df += q * r;
        }
        out[0] = f;
        out[1] = df;
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
