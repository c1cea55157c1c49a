package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API plane rotation of {@link DecompUtil}; loaded only if
 * VectorSupport.enabled(), at the width it chose.
 */
final class DecompSimd {
    private DecompSimd() {}

    private static final VectorSpecies<Double> DS = VectorProbe.doubleSpecies();
    private static final int DL = DS.length();
    private static final boolean FMA = VectorSupport.FMA;

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
     * Rows [r0, r1) of y += A x for the symmetric A stored in its lower triangle (row r holds
     * columns c0..r at a[r * lda + c]): y[r] += sum_{c0 <= c <= r} a[r, c] x[c] and, for the
     * mirrored upper part, y[c] += a[r, c] x[r] for c0 <= c < r. One pass over each row does both.
     */
    static void symvLowerRows(double[] a, int lda, int c0, int r0, int r1, double[] x, double[] y) {
        for (int r = r0; r < r1; r++) {
            int ar = r * lda;
            double xr = x[r];
            int c = c0;
            double s = 0;
            int n = r - c0;
            if (n >= 2 * DL) {
                DoubleVector vxr = DoubleVector.broadcast(DS, xr);
                DoubleVector acc0 = DoubleVector.zero(DS), acc1 = DoubleVector.zero(DS);
                int up = c0 + n - 2 * DL;
                for (; c <= up; c += 2 * DL) {
                    DoubleVector a0 = DoubleVector.fromArray(DS, a, ar + c), a1 = DoubleVector.fromArray(DS, a, ar + c + DL);
                    DoubleVector x0 = DoubleVector.fromArray(DS, x, c), x1 = DoubleVector.fromArray(DS, x, c + DL);
                    DoubleVector y0 = DoubleVector.fromArray(DS, y, c), y1 = DoubleVector.fromArray(DS, y, c + DL);
                    if (FMA) {
                        acc0 = a0.fma(x0, acc0);
                        acc1 = a1.fma(x1, acc1);
                        a0.fma(vxr, y0).intoArray(y, c);
                        a1.fma(vxr, y1).intoArray(y, c + DL);
                    } else {
                        acc0 = a0.mul(x0).add(acc0);
                        acc1 = a1.mul(x1).add(acc1);
                        a0.mul(vxr).add(y0).intoArray(y, c);
                        a1.mul(vxr).add(y1).intoArray(y, c + DL);
                    }
                }
                s = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
            }
            for (; c < r; c++) {
                double av = a[ar + c];
                s += av * x[c];
                y[c] += av * xr;
            }
            y[r] += s + a[ar + r] * xr;
        }
    }

    /**
     * The vector part of {@link DecompUtil#secularSums}: out[0] = sum w[i] / (d[row+i] - tau),
     * out[1] = sum w[i] / (d[row+i] - tau)^2 over i in [from, end); returns end, where the caller's
     * scalar loop goes on.
     */
    static int secularSums(double[] d, int row, double[] w, int from, int to, double tau, double[] out) {
        int i = from;
        double f = 0, df = 0;
        if (to - from >= DL) {
            DoubleVector vt = DoubleVector.broadcast(DS, tau);
            DoubleVector fs = DoubleVector.zero(DS), dfs = DoubleVector.zero(DS);
            int up = from + DS.loopBound(to - from);
            for (; i < up; i += DL) {
                DoubleVector r = DoubleVector.broadcast(DS, 1.0).div(DoubleVector.fromArray(DS, d, row + i).sub(vt));
                DoubleVector q = DoubleVector.fromArray(DS, w, i).mul(r);
                fs = fs.add(q);
                dfs = FMA ? q.fma(r, dfs) : q.mul(r).add(dfs);
            }
            f = fs.reduceLanes(VectorOperators.ADD);
            df = dfs.reduceLanes(VectorOperators.ADD);
        }
        out[0] = f;
        out[1] = df;
        return i;
    }
}
