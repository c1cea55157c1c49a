package casp.kernel;

/**
 * Triangular solves and inverses on row-major arrays, in double and float.
 *
 * <p>T is an n x n triangular matrix stored row-major at t[offT + i * ldt + j]; only its upper
 * (upper == true) or lower triangle is read, the diagonal included (it must be non-zero; the
 * diagonal is not assumed to be one). op(T) is T, or T^T with trans == true.
 */
public final class Triangular {
    private Triangular() {}

    /** Solves op(T) X = B for X, overwriting B, which is [n, nrhs] row-major. */
    public static void solveLeft(boolean upper, boolean trans, int n, int nrhs, double[] t, int offT, int ldt,
                                 double[] b, int offB, int ldb) {
        TriangularD.solveLeft(upper, trans, n, nrhs, t, offT, ldt, b, offB, ldb);
    }

    /** Solves op(T) X = B for X, overwriting B, which is [n, nrhs] row-major. */
    public static void solveLeft(boolean upper, boolean trans, int n, int nrhs, float[] t, int offT, int ldt,
                                 float[] b, int offB, int ldb) {
        TriangularF.solveLeft(upper, trans, n, nrhs, t, offT, ldt, b, offB, ldb);
    }

    /** Solves X op(T) = B for X, overwriting B, which is [m, n] row-major (T is n x n). */
    public static void solveRight(boolean upper, boolean trans, int m, int n, double[] t, int offT, int ldt,
                                  double[] b, int offB, int ldb) {
        TriangularD.solveRight(upper, trans, m, n, t, offT, ldt, b, offB, ldb);
    }

    /** Solves X op(T) = B for X, overwriting B, which is [m, n] row-major (T is n x n). */
    public static void solveRight(boolean upper, boolean trans, int m, int n, float[] t, int offT, int ldt,
                                  float[] b, int offB, int ldb) {
        TriangularF.solveRight(upper, trans, m, n, t, offT, ldt, b, offB, ldb);
    }

    /** Replaces the upper (or lower) triangle of T by that of T^-1; the other triangle is untouched. */
    public static void invert(boolean upper, int n, double[] t, int offT, int ldt) {
        if (upper) TriangularD.invertUpper(n, t, offT, ldt);
        else TriangularD.invertLower(n, t, offT, ldt);
    }

    /** Replaces the upper (or lower) triangle of T by that of T^-1; the other triangle is untouched. */
    public static void invert(boolean upper, int n, float[] t, int offT, int ldt) {
        if (upper) TriangularF.invertUpper(n, t, offT, ldt);
        else TriangularF.invertLower(n, t, offT, ldt);
    }
}
