package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GEMM and GEMV at the JVM's default vector width; VectorWidthTest repeats them at the other widths. */
class GemmTest {
    @Test
    void sgemmFacadeMatchesNaive() {
        KernelChecks.sgemmFacade();
    }

    @Test
    void sgemmPackedDriverMatchesNaive() {
        KernelChecks.sgemmPacked();
    }

    @Test
    void dgemmMatchesNaive() {
        KernelChecks.dgemm();
    }

    @Test
    void lowerTriangleRestriction() {
        KernelChecks.triangleRestriction();
    }

    @Test
    void sgemvMatchesNaive() {
        KernelChecks.sgemv();
    }

    @Test
    void betaZeroIgnoresNaNInC() {
        int n = 70;
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        Arrays.fill(a, 1f);
        Arrays.fill(b, 2f);
        Arrays.fill(c, Float.NaN);
        Gemm.sgemm(false, false, n, n, n, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
        for (float v : c) assertEquals(2f * n, v);
        Arrays.fill(c, Float.NaN);
        Gemm.sgemm(false, false, n, n, 0, 1f, a, 0, n, b, 0, n, 0f, c, 0, n);
        for (float v : c) assertEquals(0f, v);
    }

    @Test
    void oneByOne() {
        float[] c = {Float.NaN};
        Gemm.sgemm(true, true, 1, 1, 1, 3f, new float[] {2f}, 0, 1, new float[] {5f}, 0, 1, 0f, c, 0, 1);
        assertEquals(30f, c[0]);
        Gemm.sgemm(false, false, 1, 1, 1, 1f, new float[] {2f}, 0, 1, new float[] {5f}, 0, 1, 0.5f, c, 0, 1);
        assertEquals(25f, c[0]);
    }

    @Test
    void parallelResultEqualsSerialOrder() {
        // Threads split whole tiles, so the result must not depend on the split: the parallel GEMM and
        // the serial one (a kernel called inside a parallel region runs on its calling thread) agree bit for bit.
        org.junit.jupiter.api.Assumptions.assumeTrue(Parallel.threads() > 1, "one thread: no parallel path to compare");
        int m = 513, n = 257, k = 300;
        float[] a = KernelChecks.randomF(new java.util.SplittableRandom(1), m * k);
        float[] b = KernelChecks.randomF(new java.util.SplittableRandom(2), k * n);
        float[] parallel = new float[m * n], serial = new float[m * n];
        Gemm.sgemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, parallel, 0, n);
        Parallel.forRange(2, t -> {
            if (t == 0) Gemm.sgemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, serial, 0, n);
        });
        assertTrue(Arrays.equals(parallel, serial), "the parallel and the serial GEMM differ");
    }
}
