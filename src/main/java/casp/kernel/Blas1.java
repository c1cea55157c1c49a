package casp.kernel;

/**
 * Level-1 helpers (dot, sum, axpy, scal) in float and double, on the Vector API when it is enabled and in
 * plain loops otherwise. Used by the triangular and Cholesky kernels for their short inner loops.
 */
public final class Blas1 {
    private Blas1() {}

    private static final boolean SIMD = VectorSupport.enabled();

    /** Sum of x[ox + i] * y[oy + i] for i < n. */
    public static double dot(int n, double[] x, int ox, double[] y, int oy) {
        if (SIMD) return Blas1Simd.dot(n, x, ox, y, oy);
        double s = 0;
        for (int i = 0; i < n; i++) s += x[ox + i] * y[oy + i];
        return s;
    }

    /** Sum of x[ox + i] * y[oy + i] for i < n. */
    public static float dot(int n, float[] x, int ox, float[] y, int oy) {
        if (SIMD) return Blas1Simd.dot(n, x, ox, y, oy);
        float s = 0;
        for (int i = 0; i < n; i++) s += x[ox + i] * y[oy + i];
        return s;
    }

    /** Sum of x[ox + i] for i < n (in a fixed order, so the same inputs always give the same sum). */
    public static float sum(int n, float[] x, int ox) {
        if (SIMD) return Blas1Simd.sum(n, x, ox);
        float s = 0;
        for (int i = 0; i < n; i++) s += x[ox + i];
        return s;
    }

    /** y[oy + i] += (double) x[ox + i] for i < n: a float block folded into a float64 accumulator. */
    public static void addWidened(int n, float[] x, int ox, double[] y, int oy) {
        if (SIMD) {
            Blas1Simd.addWidened(n, x, ox, y, oy);
            return;
        }
        for (int i = 0; i < n; i++) y[oy + i] += x[ox + i];
    }

    /** x[ox + i] *= alpha for i < n. */
    public static void scal(int n, double alpha, double[] x, int ox) {
        if (SIMD) {
            Blas1Simd.scal(n, alpha, x, ox);
            return;
        }
        for (int i = 0; i < n; i++) x[ox + i] *= alpha;
    }

    /** y[oy + i] += alpha * x[ox + i] for i < n. */
    public static void axpy(int n, double alpha, double[] x, int ox, double[] y, int oy) {
        if (SIMD) {
            Blas1Simd.axpy(n, alpha, x, ox, y, oy);
            return;
        }
        for (int i = 0; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }

    /** y[oy + i] += alpha * x[ox + i] for i < n. */
    public static void axpy(int n, float alpha, float[] x, int ox, float[] y, int oy) {
        if (SIMD) {
            Blas1Simd.axpy(n, alpha, x, ox, y, oy);
            return;
        }
        for (int i = 0; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }
}
