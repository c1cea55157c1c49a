package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Small float64 building blocks shared by the decompositions of this package (QR, eigen, SVD):
 * vectorised dot / axpy / plane rotation on contiguous rows, and a small dense Cholesky and
 * triangular inverse used by CholeskyQR. Every vector lives and dies inside one method here.
 */
final class DecompUtil {
    private DecompUtil() {}

    static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final int DL = DS.length();
    private static final boolean FMA = VectorGate.FMA;

    /** Unit roundoff of float64 (2^-52 / 2). */
    static final double EPS64 = Math.ulp(1.0);

    /** sum_i a[oa+i] * b[ob+i] for i in [0, n). */
    static double dot(double[] a, int oa, double[] b, int ob, int n) {
        int i = 0;
        double s = 0;
        if (n >= 2 * DL) {
            DoubleVector acc0 = DoubleVector.zero(DS), acc1 = DoubleVector.zero(DS);
            int up = n - 2 * DL;
            for (; i <= up; i += 2 * DL) {
                DoubleVector x0 = DoubleVector.fromArray(DS, a, oa + i), y0 = DoubleVector.fromArray(DS, b, ob + i);
                acc0 = FMA ? x0.fma(y0, acc0) : x0.mul(y0).add(acc0);
                DoubleVector x1 = DoubleVector.fromArray(DS, a, oa + i + DL), y1 = DoubleVector.fromArray(DS, b, ob + i + DL);
                acc1 = FMA ? x1.fma(y1, acc1) : x1.mul(y1).add(acc1);
            }
            s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        }
        for (; i < n; i++) s += a[oa + i] * b[ob + i];
        return s;
    }

    /** y[oy+i] += alpha * x[ox+i] for i in [0, n). */
    static void axpy(double alpha, double[] x, int ox, double[] y, int oy, int n) {
        int i = 0;
        if (n >= DL) {
            DoubleVector va = DoubleVector.broadcast(DS, alpha);
            int up = DS.loopBound(n);
            for (; i < up; i += DL) {
                DoubleVector xv = DoubleVector.fromArray(DS, x, ox + i), yv = DoubleVector.fromArray(DS, y, oy + i);
                (FMA ? xv.fma(va, yv) : xv.mul(va).add(yv)).intoArray(y, oy + i);
            }
        }
        for (; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }

    /** x[ox+i] *= alpha for i in [0, n). */
    static void scale(double alpha, double[] x, int ox, int n) {
        int i = 0;
        if (n >= DL) {
            int up = DS.loopBound(n);
            for (; i < up; i += DL) DoubleVector.fromArray(DS, x, ox + i).mul(alpha).intoArray(x, ox + i);
        }
        for (; i < n; i++) x[ox + i] *= alpha;
    }

    /**
     * Plane rotation of two rows: (x, y) <- (c x - s y, s x + c y), elementwise over n entries.
     */
    static void rotate(double[] a, int ox, int oy, int n, double c, double s) {
        int i = 0;
        if (n >= DL) {
            int up = DS.loopBound(n);
            for (; i < up; i += DL) {
                DoubleVector x = DoubleVector.fromArray(DS, a, ox + i);
                DoubleVector y = DoubleVector.fromArray(DS, a, oy + i);
                x.mul(c).sub(y.mul(s)).intoArray(a, ox + i);
                x.mul(s).add(y.mul(c)).intoArray(a, oy + i);
            }
        }
        for (; i < n; i++) {
            double x = a[ox + i], y = a[oy + i];
            a[ox + i] = c * x - s * y;
            a[oy + i] = s * x + c * y;
        }
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
