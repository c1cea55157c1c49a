package casp.kernel;

/**
 * Double-precision triangular solves and inverse; {@link Triangular} is the public facade. Blocked:
 * the bulk of the work is a GEMM against the already solved part, the rest a short substitution
 * inside a block of NB rows or columns. {@link TriangularF} is the float twin, kept identical apart
 * from the element type.
 */
final class TriangularD {
    private TriangularD() {}

    static final int NB = 64;

    /** op(T)(i, j) with op = identity or transpose. */
    private static double at(double[] t, int offT, int ldt, boolean trans, int i, int j) {
        return trans ? t[offT + j * ldt + i] : t[offT + i * ldt + j];
    }

    /** Solves op(T) X = B for X, overwriting B ([n, nrhs]). */
    static void solveLeft(boolean upper, boolean trans, int n, int nrhs, double[] t, int offT, int ldt,
                          double[] b, int offB, int ldb) {
        if (n <= 0 || nrhs <= 0) return;
        boolean lower = upper == trans; // op(T) is lower triangular
        if (lower) {
            for (int i0 = 0; i0 < n; i0 += NB) {
                int i1 = Math.min(n, i0 + NB);
                // B[I, :] -= op(T)[I, 0:i0] X[0:i0, :]
                if (i0 > 0) {
                    int aOff = trans ? offT + i0 : offT + i0 * ldt;
                    Gemm.dgemm(trans, false, i1 - i0, nrhs, i0, -1, t, aOff, ldt, b, offB, ldb, 1, b, offB + i0 * ldb, ldb);
                }
                leftBlock(true, trans, i0, i1, nrhs, t, offT, ldt, b, offB, ldb, 0, nrhs);
            }
        } else {
            for (int i1 = n; i1 > 0; i1 -= NB) {
                int i0 = Math.max(0, i1 - NB);
                // B[I, :] -= op(T)[I, i1:n] X[i1:n, :]
                if (i1 < n) {
                    int aOff = trans ? offT + i1 * ldt + i0 : offT + i0 * ldt + i1;
                    Gemm.dgemm(trans, false, i1 - i0, nrhs, n - i1, -1, t, aOff, ldt, b, offB + i1 * ldb, ldb,
                            1, b, offB + i0 * ldb, ldb);
                }
                leftBlock(false, trans, i0, i1, nrhs, t, offT, ldt, b, offB, ldb, 0, nrhs);
            }
        }
    }

    /** Substitution inside rows [i0, i1) of a left solve, on the columns [c0, c1) of B. */
    private static void leftBlock(boolean lower, boolean trans, int i0, int i1, int nrhs, double[] t, int offT, int ldt,
                                  double[] b, int offB, int ldb, int c0, int c1) {
        int w = c1 - c0;
        if (lower) {
            for (int i = i0; i < i1; i++) {
                int bi = offB + i * ldb + c0;
                for (int p = i0; p < i; p++) {
                    double m = at(t, offT, ldt, trans, i, p);
                    if (m != 0) Blas1.axpy(w, -m, b, offB + p * ldb + c0, b, bi);
                }
                double inv = 1 / at(t, offT, ldt, trans, i, i);
                for (int j = 0; j < w; j++) b[bi + j] *= inv;
            }
        } else {
            for (int i = i1 - 1; i >= i0; i--) {
                int bi = offB + i * ldb + c0;
                for (int p = i + 1; p < i1; p++) {
                    double m = at(t, offT, ldt, trans, i, p);
                    if (m != 0) Blas1.axpy(w, -m, b, offB + p * ldb + c0, b, bi);
                }
                double inv = 1 / at(t, offT, ldt, trans, i, i);
                for (int j = 0; j < w; j++) b[bi + j] *= inv;
            }
        }
    }

    /** Solves X op(T) = B for X, overwriting B ([m, n]). */
    static void solveRight(boolean upper, boolean trans, int m, int n, double[] t, int offT, int ldt,
                           double[] b, int offB, int ldb) {
        if (m <= 0 || n <= 0) return;
        boolean opUpper = upper != trans; // op(T) is upper triangular: columns are solved left to right
        int tasks = (long) m * n * NB >= (1L << 18) ? Parallel.threads() : 1;
        if (opUpper) {
            for (int j0 = 0; j0 < n; j0 += NB) {
                int j1 = Math.min(n, j0 + NB);
                // B[:, J] -= X[:, 0:j0] op(T)[0:j0, J]
                if (j0 > 0) {
                    int bOff = trans ? offT + j0 * ldt : offT + j0;
                    Gemm.dgemm(false, trans, m, j1 - j0, j0, -1, b, offB, ldb, t, bOff, ldt, 1, b, offB + j0, ldb);
                }
                int jj0 = j0;
                Parallel.forRange(tasks, q -> {
                    for (int r = (int) ((long) m * q / tasks); r < (int) ((long) m * (q + 1) / tasks); r++) {
                        rightRow(true, trans, jj0, j1, t, offT, ldt, b, offB + r * ldb);
                    }
                });
            }
        } else {
            for (int j1 = n; j1 > 0; j1 -= NB) {
                int j0 = Math.max(0, j1 - NB);
                // B[:, J] -= X[:, j1:n] op(T)[j1:n, J]
                if (j1 < n) {
                    int bOff = trans ? offT + j0 * ldt + j1 : offT + j1 * ldt + j0;
                    Gemm.dgemm(false, trans, m, j1 - j0, n - j1, -1, b, offB + j1, ldb, t, bOff, ldt, 1, b, offB + j0, ldb);
                }
                int jj0 = j0, jj1 = j1;
                Parallel.forRange(tasks, q -> {
                    for (int r = (int) ((long) m * q / tasks); r < (int) ((long) m * (q + 1) / tasks); r++) {
                        rightRow(false, trans, jj0, jj1, t, offT, ldt, b, offB + r * ldb);
                    }
                });
            }
        }
    }

    /** Substitution x op(T) = b inside columns [j0, j1) of one row x (in place at b[ob ..]). */
    private static void rightRow(boolean opUpper, boolean trans, int j0, int j1, double[] t, int offT, int ldt,
                                 double[] b, int ob) {
        if (opUpper) {
            // x[c] = (b[c] - sum_{j0 <= p < c} x[p] op(T)(p, c)) / op(T)(c, c)
            for (int c = j0; c < j1; c++) {
                double s;
                if (trans) { // op(T)(p, c) = T(c, p): a contiguous run of row c
                    s = Blas1.dot(c - j0, b, ob + j0, t, offT + c * ldt + j0);
                } else {
                    s = 0;
                    for (int p = j0; p < c; p++) s += b[ob + p] * t[offT + p * ldt + c];
                }
                b[ob + c] = (b[ob + c] - s) / at(t, offT, ldt, trans, c, c);
            }
        } else {
            // x[c] = (b[c] - sum_{c < p < j1} x[p] op(T)(p, c)) / op(T)(c, c)
            for (int c = j1 - 1; c >= j0; c--) {
                double s;
                if (trans) { // op(T)(p, c) = T(c, p)
                    s = Blas1.dot(j1 - c - 1, b, ob + c + 1, t, offT + c * ldt + c + 1);
                } else {
                    s = 0;
                    for (int p = c + 1; p < j1; p++) s += b[ob + p] * t[offT + p * ldt + c];
                }
                b[ob + c] = (b[ob + c] - s) / at(t, offT, ldt, trans, c, c);
            }
        }
    }

    /**
     * Inverts the lower triangle of T in place (the strict upper triangle is neither read nor
     * written). Forward substitution of L X = I by blocks of rows, using that X is lower
     * triangular: block I only needs columns [0, i1), so the work is n^3/3 multiply-adds.
     */
    static void invertLower(int n, double[] t, int offT, int ldt) {
        if (n <= 0) return;
        double[] x = new double[n * n]; // X = L^-1, row-major, upper part stays zero
        for (int i0 = 0; i0 < n; i0 += NB) {
            int i1 = Math.min(n, i0 + NB);
            for (int i = i0; i < i1; i++) x[i * n + i] = 1;
            if (i0 > 0) {
                // X[I, 0:i0] = -L[I, 0:i0] X[0:i0, 0:i0]
                Gemm.dgemm(false, false, i1 - i0, i0, i0, -1, t, offT + i0 * ldt, ldt, x, 0, n, 0, x, i0 * n, n);
            }
            // Rows of the block, on the columns [0, i1): X[i, :] = (X[i, :] - sum_p L(i, p) X[p, :]) / L(i, i)
            leftBlock(true, false, i0, i1, i1, t, offT, ldt, x, 0, n, 0, i1);
        }
        for (int i = 0; i < n; i++) System.arraycopy(x, i * n, t, offT + i * ldt, i + 1);
    }

    /** Inverts the upper triangle of T in place: inv(U) = inv(U^T)^T. */
    static void invertUpper(int n, double[] t, int offT, int ldt) {
        if (n <= 0) return;
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) l[j * n + i] = t[offT + i * ldt + j];
        }
        invertLower(n, l, 0, n);
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) t[offT + i * ldt + j] = l[j * n + i];
        }
    }
}
