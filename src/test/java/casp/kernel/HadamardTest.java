package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HadamardTest {

    @Test
    void builtMatricesAreHadamard() {
        for (int k : new int[]{1, 2, 4, 12, 20, 24, 28, 36, 40, 44, 60, 88, 108, 140}) {
            byte[] h = Hadamard.matrix(k);
            for (int i = 0; i < k; i++) {
                for (int j = 0; j < k; j++) {
                    int dot = 0;
                    for (int c = 0; c < k; c++) dot += h[i * k + c] * h[j * k + c];
                    assertEquals(i == j ? k : 0, dot, "order " + k + " rows " + i + ", " + j);
                }
            }
        }
    }

    @Test
    void ordersAndPadding() {
        assertEquals(1, Hadamard.denseOrder(4096));
        assertEquals(20, Hadamard.denseOrder(5120));   // Llama-13B hidden: 256 x 20
        assertEquals(108, Hadamard.denseOrder(13824)); // Llama-13B intermediate: 128 x 108
        assertEquals(28, Hadamard.denseOrder(28672));  // Llama-70B intermediate: 1024 x 28
        assertEquals(44, Hadamard.denseOrder(176));
        assertFalse(Hadamard.supported(172));          // 4 x 43: no construction here
        assertFalse(Hadamard.supported(11008));        // 2 x 5504 (Paley I, q = 5503) exceeds MAX_DENSE
        assertEquals(11264, Hadamard.paddedSize(11008, 8)); // 1024 x 11 -> 256 x 44
        assertEquals(176, Hadamard.paddedSize(172, 8));
        assertEquals(64, Hadamard.paddedSize(64, 8));
        assertEquals(8, Hadamard.paddedSize(5, 8));
        assertThrows(IllegalArgumentException.class, () -> Hadamard.of(172));
    }

    /** The transform against the explicit matrix (Sylvester (x) M_K) / sqrt(n), at awkward lengths. */
    @Test
    void matchesExplicitKroneckerProductAndIsOrthogonal() {
        Random rnd = new Random(3);
        for (int n : new int[]{1, 2, 8, 12, 24, 44, 88, 176, 240, 256}) {
            Hadamard t = Hadamard.of(n);
            int k = t.denseOrder(), p = n / k;
            byte[] m = Hadamard.matrix(k);
            float[] x = new float[n + 3];
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
            float[] y = x.clone(), yt = x.clone();
            t.apply(y, 3);
            t.applyTranspose(yt, 3);
            double norm = 1 / Math.sqrt(n);
            for (int i = 0; i < n; i++) {
                double s = 0, st = 0;
                for (int j = 0; j < n; j++) {
                    double e = sylvester(i / k, j / k) * m[(i % k) * k + j % k]; // (H_p (x) M_K)[i, j]
                    double et = sylvester(j / k, i / k) * m[(j % k) * k + i % k];
                    s += e * x[3 + j];
                    st += et * x[3 + j];
                }
                assertEquals(s * norm, y[3 + i], 1e-5, "n=" + n + " i=" + i);
                assertEquals(st * norm, yt[3 + i], 1e-5, "transpose n=" + n + " i=" + i);
            }
            for (int i = 0; i < 3; i++) assertEquals(x[i], y[i], 0);
            t.apply(yt, 3); // T T^T = I
            for (int i = 0; i < n; i++) assertEquals(x[3 + i], yt[3 + i], 1e-5, "T T^T x, n=" + n);
            assertTrue(p * k == n);
        }
    }

    @Test
    void rowsMatchSingleApplications() {
        Hadamard t = Hadamard.of(176);
        float[] a = QuantizedMatrixTest.randomVector(37 * 176, 5);
        float[] expect = a.clone();
        for (int r = 0; r < 37; r++) t.applyTranspose(expect, r * 176);
        t.applyRows(a, 0, 37, true);
        for (int i = 0; i < a.length; i++) assertEquals(expect[i], a[i], 0f);
    }

    /** Entry (i, j) of the unnormalised Sylvester Hadamard matrix: (-1)^popcount(i & j). */
    static double sylvester(int i, int j) {
        return Integer.bitCount(i & j) % 2 == 0 ? 1 : -1;
    }
}
