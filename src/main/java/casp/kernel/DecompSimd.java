package casp.kernel;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API plane rotation of {@link DecompUtil}; loaded only if
 * VectorSupport.enabled(), at the width it chose.
 */
final class DecompSimd {
    private DecompSimd() {}

    private static final VectorSpecies<Double> DS = VectorProbe.doubleSpecies();
    private static final int DL = DS.length();

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
}
