package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class HessianAccumulatorTest {

    @Test
    void matchesTheNaiveSumOverSeveralBatches() {
        for (int d : new int[]{1, 7, 33, 130}) {
            Random r = new Random(d);
            HessianAccumulator acc = new HessianAccumulator(d);
            double[] ref = new double[d * d];
            long n = 0;
            for (int rows : new int[]{1, 17, 300}) {
                float[] x = new float[5 + rows * d];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (1 + i % 3);
                acc.add(x, 5, rows);
                for (int t = 0; t < rows; t++)
                    for (int i = 0; i < d; i++)
                        for (int j = 0; j < d; j++) ref[i * d + j] += (double) x[5 + t * d + i] * x[5 + t * d + j];
                n += rows;
            }
            assertEquals(n, acc.tokens());
            double[] h = acc.finish();
            for (int i = 0; i < d * d; i++) {
                double want = 2.0 * ref[i] / n;
                assertEquals(want, h[i], 1e-5 * (1 + Math.abs(want)), "d=" + d + " at " + i);
            }
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) assertEquals(h[i * d + j], h[j * d + i], "symmetric");
            assertThrows(IllegalStateException.class, () -> acc.add(new float[d], 0, 1));
        }
    }
}
