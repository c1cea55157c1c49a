package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class FwhtTest {

    /** At the JVM's default width; VectorWidthTest runs the same check at the other widths. */
    @Test
    void matchesExplicitHadamardMatrix() {
        KernelChecks.fwht();
    }

    @Test
    void isItsOwnInverseAndKeepsTheNorm() {
        int n = 1 << 14;
        float[] x = QuantizedMatrixTest.randomVector(n, 42);
        float[] orig = x.clone();
        double n0 = 0, n1 = 0;
        for (float v : x) n0 += v * (double) v;
        Fwht.transform(x, 0, n);
        for (float v : x) n1 += v * (double) v;
        assertEquals(n0, n1, 1e-4 * n0);
        Fwht.transform(x, 0, n);
        for (int i = 0; i < n; i++) assertEquals(orig[i], x[i], 1e-5);
    }

    @Test
    void transformsEachRow() {
        int rows = 33, n = 256;
        float[] a = QuantizedMatrixTest.randomVector(rows * n, 7);
        float[] expect = a.clone();
        for (int r = 0; r < rows; r++) Fwht.transform(expect, r * n, n);
        Fwht.transformRows(a, 0, rows, n);
        for (int i = 0; i < a.length; i++) assertEquals(expect[i], a[i], 0f);
    }

    @Test
    void rejectsNonPowerOfTwo() {
        assertThrows(IllegalArgumentException.class, () -> Fwht.transform(new float[12], 0, 12));
        assertThrows(IllegalArgumentException.class, () -> Fwht.transform(new float[8], 4, 8));
    }
}
