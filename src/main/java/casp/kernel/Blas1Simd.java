package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Vector API dot and axpy used by the triangular kernels; loaded only when VectorSupport.enabled(). */
final class Blas1Simd {
    private Blas1Simd() {}

    static final VectorSpecies<Float> F = VectorProbe.floatSpecies();
    static final VectorSpecies<Double> D = VectorProbe.doubleSpecies();
    static final int FL = F.length();
    static final int DL = D.length();
    /** Floats of half the width: as many lanes as D, for float-to-double widening. */
    static final VectorSpecies<Float> F_HALF = VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));

    static double dot(int n, double[] x, int ox, double[] y, int oy) {
        DoubleVector s0 = DoubleVector.zero(D), s1 = s0;
        int i = 0;
        for (; i + 2 * DL <= n; i += 2 * DL) {
            s0 = DoubleVector.fromArray(D, x, ox + i).fma(DoubleVector.fromArray(D, y, oy + i), s0);
            s1 = DoubleVector.fromArray(D, x, ox + i + DL).fma(DoubleVector.fromArray(D, y, oy + i + DL), s1);
        }
        for (; i + DL <= n; i += DL) {
            s0 = DoubleVector.fromArray(D, x, ox + i).fma(DoubleVector.fromArray(D, y, oy + i), s0);
        }
        double s = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += x[ox + i] * y[oy + i];
        return s;
    }

    static float dot(int n, float[] x, int ox, float[] y, int oy) {
        FloatVector s0 = FloatVector.zero(F), s1 = s0;
        int i = 0;
        for (; i + 2 * FL <= n; i += 2 * FL) {
            s0 = FloatVector.fromArray(F, x, ox + i).fma(FloatVector.fromArray(F, y, oy + i), s0);
            s1 = FloatVector.fromArray(F, x, ox + i + FL).fma(FloatVector.fromArray(F, y, oy + i + FL), s1);
        }
        for (; i + FL <= n; i += FL) {
            s0 = FloatVector.fromArray(F, x, ox + i).fma(FloatVector.fromArray(F, y, oy + i), s0);
        }
        float s = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += x[ox + i] * y[oy + i];
        return s;
    }

    static float sum(int n, float[] x, int ox) {
        FloatVector s0 = FloatVector.zero(F), s1 = s0;
        int i = 0;
        for (; i + 2 * FL <= n; i += 2 * FL) {
            s0 = s0.add(FloatVector.fromArray(F, x, ox + i));
            s1 = s1.add(FloatVector.fromArray(F, x, ox + i + FL));
        }
        for (; i + FL <= n; i += FL) s0 = s0.add(FloatVector.fromArray(F, x, ox + i));
        float s = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += x[ox + i];
        return s;
    }

    static void addWidened(int n, float[] x, int ox, double[] y, int oy) {
        int i = 0;
        for (; i + DL <= n; i += DL) {
            DoubleVector xv = (DoubleVector) FloatVector.fromArray(F_HALF, x, ox + i).convertShape(VectorOperators.F2D, D, 0);
            xv.add(DoubleVector.fromArray(D, y, oy + i)).intoArray(y, oy + i);
        }
        for (; i < n; i++) y[oy + i] += x[ox + i];
    }

    static void scal(int n, double alpha, double[] x, int ox) {
        int i = 0;
        if (n >= DL) {
            int up = D.loopBound(n);
            for (; i < up; i += DL) DoubleVector.fromArray(D, x, ox + i).mul(alpha).intoArray(x, ox + i);
        }
        for (; i < n; i++) x[ox + i] *= alpha;
    }

    static void axpy(int n, double alpha, double[] x, int ox, double[] y, int oy) {
        DoubleVector av = DoubleVector.broadcast(D, alpha);
        int i = 0;
        for (; i + DL <= n; i += DL) {
            DoubleVector.fromArray(D, x, ox + i).fma(av, DoubleVector.fromArray(D, y, oy + i)).intoArray(y, oy + i);
        }
        for (; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }

    static void axpy(int n, float alpha, float[] x, int ox, float[] y, int oy) {
        FloatVector av = FloatVector.broadcast(F, alpha);
        int i = 0;
        for (; i + FL <= n; i += FL) {
            FloatVector.fromArray(F, x, ox + i).fma(av, FloatVector.fromArray(F, y, oy + i)).intoArray(y, oy + i);
        }
        for (; i < n; i++) y[oy + i] += alpha * x[ox + i];
    }

}
