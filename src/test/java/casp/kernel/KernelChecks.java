package casp.kernel;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Every kernel against a naive reference at awkward sizes. Plain static methods that throw
 * AssertionError, so that {@link VectorWidthTest} can run them again inside class loaders whose
 * kernels were initialised with another vector width; the JUnit tests call them directly too.
 */
public final class KernelChecks {
    private KernelChecks() {}

    static final int[] SIZES = {1, 7, 17, 33, 129};
    static final boolean[] BOOLS = {false, true};

    /** The effective vector width of the kernels this class is linked against. */
    public static int bits() {
        return VectorSupport.bits();
    }

    /**
     * Fails with the vector width in the message. Callers test first and only then build the
     * message (if (!ok) fail(...)): building it for every element would cost more than the checks.
     */
    static void fail(String what) {
        throw new AssertionError(what + " (vector bits " + VectorSupport.bits() + ")");
    }

    static float[] randomF(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        return x;
    }

    static double[] randomD(SplittableRandom r, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = r.nextDouble() * 2 - 1;
        return x;
    }

    // ---------------------------------------------------------------- GEMM

    interface SgemmImpl {
        void run(boolean tA, boolean tB, int m, int n, int k, float alpha, float[] a, int offA, int lda,
                 float[] b, int offB, int ldb, float beta, float[] c, int offC, int ldc);
    }

    /** One sgemm case with offsets, padded leading dimensions and NaN in every padding cell. */
    static void sgemmCase(SgemmImpl impl, SplittableRandom r, boolean tA, boolean tB, int m, int n, int k,
                          float alpha, float beta) {
        int ar = tA ? k : m, ac = tA ? m : k, br = tB ? n : k, bc = tB ? k : n;
        int lda = ac + 3, ldb = bc + 1, ldc = n + 5, offA = 2, offB = 1, offC = 3;
        float[] a = new float[offA + ar * lda];
        float[] b = new float[offB + br * ldb];
        float[] c = new float[offC + m * ldc + 2];
        Arrays.fill(a, Float.NaN);
        Arrays.fill(b, Float.NaN);
        Arrays.fill(c, Float.NaN);
        for (int i = 0; i < ar; i++) for (int j = 0; j < ac; j++) a[offA + i * lda + j] = (float) (r.nextDouble() * 2 - 1);
        for (int i = 0; i < br; i++) for (int j = 0; j < bc; j++) b[offB + i * ldb + j] = (float) (r.nextDouble() * 2 - 1);
        if (beta != 0) {
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) c[offC + i * ldc + j] = (float) (r.nextDouble() * 2 - 1);
        }
        float[] c0 = c.clone();
        impl.run(tA, tB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
        double[] opA = rowsOf(tA, m, k, a, offA, lda), opBt = rowsOf(!tB, n, k, b, offB, ldb);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0, abs = 0;
                for (int p = 0; p < k; p++) {
                    double av = opA[i * k + p], bv = opBt[j * k + p];
                    s += av * bv;
                    abs += Math.abs(av * bv);
                }
                double cOld = beta == 0 ? 0 : c0[offC + i * ldc + j];
                double want = alpha * s + beta * cOld;
                double tol = (k + 4) * 1.2e-7 * (Math.abs(alpha) * abs + Math.abs(beta * cOld)) + 1e-30;
                float got = c[offC + i * ldc + j];
                if (!(Math.abs(got - want) <= tol)) {
                    throw new AssertionError(String.format("sgemm tA=%b tB=%b m=%d n=%d k=%d alpha=%s beta=%s: C[%d,%d]=%s, want %s (vector bits %d)",
                            tA, tB, m, n, k, alpha, beta, i, j, got, want, VectorSupport.bits()));
                }
            }
        }
        // Nothing outside C's m x n window was written.
        for (int q = 0; q < c.length; q++) {
            int rel = q - offC, i = Math.floorDiv(rel, ldc), j = Math.floorMod(rel, ldc);
            boolean inside = rel >= 0 && i < m && j < n;
            if (!inside && !Float.isNaN(c[q])) fail("sgemm wrote outside C at " + q + " (m=" + m + " n=" + n + ")");
        }
    }

    /**
     * The rows x cols matrix X[i][p] = (trans ? A[p][i] : A[i][p]) of A stored row-major at
     * a[off + r * ld + c], as dense double rows: with it the naive references below read
     * contiguous rows without a branch per product (same products, same order).
     */
    static double[] rowsOf(boolean trans, int rows, int cols, float[] a, int off, int ld) {
        double[] x = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int p = 0; p < cols; p++) x[i * cols + p] = trans ? a[off + p * ld + i] : a[off + i * ld + p];
        }
        return x;
    }

    static double[] rowsOf(boolean trans, int rows, int cols, double[] a, int off, int ld) {
        double[] x = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int p = 0; p < cols; p++) x[i * cols + p] = trans ? a[off + p * ld + i] : a[off + i * ld + p];
        }
        return x;
    }

    static void sgemmSweep(SgemmImpl impl, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[][] ab = {{1f, 0f}, {0.5f, 1f}, {-1.5f, 0.25f}};
        for (boolean tA : BOOLS) for (boolean tB : BOOLS) {
            int combo = 0;
            for (int m : SIZES) for (int n : SIZES) for (int k : SIZES) {
                float[] p = ab[combo++ % ab.length];
                sgemmCase(impl, r, tA, tB, m, n, k, p[0], p[1]);
            }
            // ~1000 along each dimension in turn (the other two kept small so the reference is cheap).
            sgemmCase(impl, r, tA, tB, 1000, 37, 1003, 1f, 0f);
            sgemmCase(impl, r, tA, tB, 41, 1001, 999, 0.75f, 0.5f);
            sgemmCase(impl, r, tA, tB, 1000, 1000, 3, 1f, 1f);
            sgemmCase(impl, r, tA, tB, 5, 3, 1500, 1f, 0f);
            // alpha == 0 and k == 0 only scale C
            sgemmCase(impl, r, tA, tB, 9, 13, 0, 1f, 0.5f);
            sgemmCase(impl, r, tA, tB, 9, 13, 5, 0f, 0f);
        }
    }

    /** The public facade (small-size loop, GEMV routing and the packed driver). */
    public static void sgemmFacade() {
        sgemmSweep(Gemm::sgemm, 1);
    }

    /** The packed driver alone, so that even 1 x 1 goes through packing and edge tiles. */
    public static void sgemmPacked() {
        sgemmSweep((tA, tB, m, n, k, al, a, oa, lda, b, ob, ldb, be, c, oc, ldc) ->
                SgemmDriver.gemm(tA, tB, m, n, k, al, a, oa, lda, b, ob, ldb, be, c, oc, ldc, SgemmDriver.FULL), 2);
    }

    /** dgemm (facade and driver) against a long-double-free naive loop; tighter tolerance. */
    public static void dgemm() {
        SplittableRandom r = new SplittableRandom(3);
        for (boolean tA : BOOLS) for (boolean tB : BOOLS) {
            for (int m : new int[] {1, 7, 33, 129}) for (int n : new int[] {1, 7, 33, 129}) for (int k : new int[] {1, 17, 130}) {
                dgemmCase(r, tA, tB, m, n, k, 1.25, m % 2 == 0 ? 0 : 0.5, true);
                dgemmCase(r, tA, tB, m, n, k, -0.5, 1, false);
            }
            dgemmCase(r, tA, tB, 1000, 29, 1001, 1, 0, false);
            dgemmCase(r, tA, tB, 31, 1000, 999, 1, 0.5, true);
        }
    }

    static void dgemmCase(SplittableRandom r, boolean tA, boolean tB, int m, int n, int k, double alpha, double beta,
                          boolean packed) {
        int ar = tA ? k : m, ac = tA ? m : k, br = tB ? n : k, bc = tB ? k : n;
        int lda = ac + 1, ldb = bc + 2, ldc = n + 3;
        double[] a = randomD(r, ar * lda), b = randomD(r, br * ldb), c = new double[m * ldc];
        Arrays.fill(c, beta == 0 ? Double.NaN : 0.5);
        double[] c0 = c.clone();
        if (packed) {
            DgemmDriver.gemm(tA, tB, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc, DgemmDriver.FULL);
        } else {
            Gemm.dgemm(tA, tB, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc);
        }
        double[] opA = rowsOf(tA, m, k, a, 0, lda), opBt = rowsOf(!tB, n, k, b, 0, ldb);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < ldc; j++) {
                if (j >= n) {
                    if (!(Double.compare(c[i * ldc + j], c0[i * ldc + j]) == 0)) fail("dgemm wrote into padding");
                    continue;
                }
                double s = 0, abs = 0;
                for (int p = 0; p < k; p++) {
                    double v = opA[i * k + p] * opBt[j * k + p];
                    s += v;
                    abs += Math.abs(v);
                }
                double want = alpha * s + (beta == 0 ? 0 : beta * c0[i * ldc + j]);
                if (!(Math.abs(c[i * ldc + j] - want) <= (k + 4) * 2.3e-16 * (Math.abs(alpha) * abs + 1)))
                        fail("dgemm tA=" + tA + " tB=" + tB + " " + m + "x" + n + "x" + k + " at " + i + "," + j);
            }
        }
    }

    /** Lower-triangle restriction of the drivers (used by SYRK and the Cholesky update). */
    public static void triangleRestriction() {
        SplittableRandom r = new SplittableRandom(4);
        for (int m : new int[] {1, 7, 33, 129, 300}) for (int n : new int[] {1, 8, 33, 129, 300}) for (int diag : new int[] {-40, -1, 0, 5, 100}) {
            int k = 19;
            float[] a = randomF(r, m * k), b = randomF(r, n * k);
            float[] c = new float[m * n];
            Arrays.fill(c, Float.NaN);
            SgemmDriver.gemm(false, true, m, n, k, 1f, a, 0, k, b, 0, k, 0f, c, 0, n, diag);
            double[] ad = new double[m * k], bd = new double[n * k], cd = new double[m * n];
            for (int i = 0; i < a.length; i++) ad[i] = a[i];
            for (int i = 0; i < b.length; i++) bd[i] = b[i];
            Arrays.fill(cd, Double.NaN);
            DgemmDriver.gemm(false, true, m, n, k, 1, ad, 0, k, bd, 0, k, 0, cd, 0, n, diag);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
                if (j <= i + diag) {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += (double) a[i * k + p] * b[j * k + p];
                    if (!(Math.abs(c[i * n + j] - s) <= 1e-5)) fail("triangle sgemm value at " + i + "," + j);
                    if (!(Math.abs(cd[i * n + j] - s) <= 1e-12)) fail("triangle dgemm value at " + i + "," + j);
                } else {
                    if (!Float.isNaN(c[i * n + j]))
                            fail("triangle sgemm wrote above the line at " + i + "," + j + " diag " + diag);
                    if (!Double.isNaN(cd[i * n + j])) fail("triangle dgemm wrote above the line at " + i + "," + j);
                }
            }
        }
    }

    // ---------------------------------------------------------------- GEMV

    public static void sgemv() {
        SplittableRandom r = new SplittableRandom(5);
        int[] sizes = {1, 7, 17, 33, 129, 1000};
        for (boolean trans : BOOLS) for (int m : sizes) for (int n : sizes) {
            gemvCase(r, trans, m, n, 1f, 0f);
            gemvCase(r, trans, m, n, -0.5f, 2f);
        }
        gemvCase(r, false, 3000, 700, 1f, 0f); // large enough to run on the pool
        gemvCase(r, true, 700, 5000, 1f, 0.5f);
    }

    static void gemvCase(SplittableRandom r, boolean trans, int m, int n, float alpha, float beta) {
        int lda = n + 2, xl = trans ? m : n, yl = trans ? n : m;
        float[] a = randomF(r, m * lda), x = randomF(r, xl + 1), y = new float[yl + 2];
        Arrays.fill(y, beta == 0 ? Float.NaN : 0.25f);
        float[] y0 = y.clone();
        Gemm.sgemv(trans, m, n, alpha, a, 0, lda, x, 1, beta, y, 1);
        if (!(Float.compare(y[0], y0[0]) == 0 && Float.compare(y[yl + 1], y0[yl + 1]) == 0)) fail("sgemv wrote outside y");
        for (int i = 0; i < yl; i++) {
            double s = 0, abs = 0;
            for (int p = 0; p < xl; p++) {
                double v = (trans ? a[p * lda + i] : a[i * lda + p]) * (double) x[1 + p];
                s += v;
                abs += Math.abs(v);
            }
            double want = alpha * s + (beta == 0 ? 0 : beta * y0[1 + i]);
            if (!(Math.abs(y[1 + i] - want) <= (xl + 4) * 1.2e-7 * (abs + 1)))
                    fail("sgemv trans=" + trans + " " + m + "x" + n + " y[" + i + "]=" + y[1 + i] + " want " + want);
        }
    }

    // ---------------------------------------------------------------- SYRK / Hessian

    public static void syrk() {
        SplittableRandom r = new SplittableRandom(6);
        int[][] cases = {{1, 1}, {7, 1}, {1, 7}, {17, 17}, {33, 7}, {129, 33}, {7, 129}, {2500, 17}, {40, 1000}, {5, 1100}, {300, 129}};
        for (int[] tc : cases) {
            int tokens = tc[0], d = tc[1], ldx = d + 3;
            float[] x = randomF(r, 1 + tokens * ldx);
            double[] h = new double[2 + d * (d + 1)];
            // symmetric starting value
            for (int i = 0; i < d; i++) for (int j = 0; j <= i; j++) {
                double v = r.nextDouble();
                h[2 + i * (d + 1) + j] = v;
                h[2 + j * (d + 1) + i] = v;
            }
            double[] h0 = h.clone();
            Syrk.accumulate(x, 1, ldx, tokens, d, h, 2, d + 1);
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) {
                double s = h0[2 + i * (d + 1) + j], abs = 0;
                for (int t = 0; t < tokens; t++) {
                    double v = (double) x[1 + t * ldx + i] * x[1 + t * ldx + j];
                    s += v;
                    abs += Math.abs(v);
                }
                double got = h[2 + i * (d + 1) + j];
                if (!(Math.abs(got - s) <= (Math.min(tokens, Syrk.TOKEN_BLOCK) + 4) * 1.2e-7 * abs + 1e-12))
                        fail("syrk tokens=" + tokens + " d=" + d + " H[" + i + "," + j + "]=" + got + " want " + s);
            }
            // padding column (index d of each row) untouched
            for (int i = 0; i < d; i++) if (!(h[2 + i * (d + 1) + d] == h0[2 + i * (d + 1) + d])) fail("syrk wrote into padding");
        }
        // Float SYRK on the lower triangle only
        for (int d : SIZES) {
            int tokens = 23;
            float[] x = randomF(r, tokens * d);
            float[] c = new float[d * d];
            Arrays.fill(c, Float.NaN);
            Syrk.ssyrkLower(tokens, d, 2f, x, 0, d, 0f, c, 0, d);
            for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) {
                if (j > i) {
                    if (!Float.isNaN(c[i * d + j])) fail("ssyrkLower touched the upper triangle");
                    continue;
                }
                double s = 0;
                for (int t = 0; t < tokens; t++) s += 2.0 * x[t * d + i] * x[t * d + j];
                if (!(Math.abs(c[i * d + j] - s) <= 1e-5 * (tokens + 1))) fail("ssyrkLower value");
            }
        }
    }

    /** Precision over many tokens: a float32 running sum would drift; the float64 fold must not. */
    public static void syrkPrecision() {
        int d = 3, tokens = 200_000;
        float[] x = new float[tokens * d];
        for (int t = 0; t < tokens; t++) {
            x[t * d] = 1f;
            x[t * d + 1] = 0.1f;
            x[t * d + 2] = (t % 2 == 0) ? 1e-3f : -1e-3f;
        }
        double[] h = new double[d * d];
        for (int rep = 0; rep < 5; rep++) Syrk.accumulate(x, 0, d, tokens, d, h, 0, d);
        double n = 5.0 * tokens;
        if (!(Math.abs(h[0] - n) <= 1e-9 * n)) fail("H[0,0] over 1e6 tokens: " + h[0]);
        // float32 blocks of TOKEN_BLOCK tokens: ~1e-6 relative; one float32 running sum would be off by percents
        double want01 = n * (double) 0.1f;
        if (!(Math.abs(h[1] - want01) <= 1e-5 * want01)) fail("H[0,1] over 1e6 tokens: " + h[1] + " want " + want01);
        if (!(Math.abs(h[2]) <= 1e-9 * n)) fail("H[0,2] should cancel: " + h[2]);
    }

    // ---------------------------------------------------------------- Cholesky and triangular

    /** A random SPD matrix: B B^T / n + I, so it is well conditioned. */
    static double[] spd(SplittableRandom r, int n) {
        double[] b = randomD(r, n * n), a = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int p = 0; p < n; p++) s += b[i * n + p] * b[j * n + p];
            a[i * n + j] = a[j * n + i] = s / n + (i == j ? 1 : 0);
        }
        return a;
    }

    public static void cholesky() {
        SplittableRandom r = new SplittableRandom(7);
        for (int n : new int[] {1, 7, 17, 33, 64, 65, 129, 400}) {
            double[] a = spd(r, n);
            int lda = n + 2;
            double[] ad = new double[n * lda];
            float[] af = new float[n * lda];
            for (int i = 0; i < n; i++) for (int j = 0; j < lda; j++) {
                double v = j < n ? (j <= i ? a[i * n + j] : 42) : 7; // upper triangle 42 and padding 7 must survive
                ad[i * lda + j] = v;
                af[i * lda + j] = (float) v;
            }
            if (!(Cholesky.factorLower(ad, 0, lda, n) == Cholesky.OK)) fail("cholesky double failed on SPD n=" + n);
            if (!(Cholesky.factorLower(af, 0, lda, n) == Cholesky.OK)) fail("cholesky float failed on SPD n=" + n);
            for (int i = 0; i < n; i++) for (int j = 0; j < lda; j++) {
                if (j >= n) {
                    if (!(ad[i * lda + j] == 7 && af[i * lda + j] == 7)) fail("cholesky wrote into padding");
                } else if (j > i) {
                    if (!(ad[i * lda + j] == 42 && af[i * lda + j] == 42)) fail("cholesky touched the upper triangle");
                } else {
                    double sd = 0, sf = 0;
                    for (int p = 0; p <= j; p++) {
                        sd += ad[i * lda + p] * ad[j * lda + p];
                        sf += (double) af[i * lda + p] * af[j * lda + p];
                    }
                    if (!(Math.abs(sd - a[i * n + j]) <= 1e-12 * (n + 1)))
                            fail("L L^T != A (double) n=" + n + " at " + i + "," + j);
                    if (!(Math.abs(sf - a[i * n + j]) <= 2e-5 * (n + 1)))
                            fail("L L^T != A (float) n=" + n + " at " + i + "," + j);
                }
            }
        }
        // a ~1000 case checked through a random vector (O(n^2)): L (L^T v) == A v
        int n = 1000;
        double[] a = new double[n * n];
        double[] g = randomD(r, n * 8);
        for (int i = 0; i < n; i++) for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int p = 0; p < 8; p++) s += g[i * 8 + p] * g[j * 8 + p];
            a[i * n + j] = a[j * n + i] = s + (i == j ? 1 + (i % 3) : 0);
        }
        double[] l = a.clone();
        float[] lf = new float[n * n];
        for (int i = 0; i < a.length; i++) lf[i] = (float) a[i];
        if (!(Cholesky.factorLower(l, 0, n, n) == Cholesky.OK)) fail("cholesky n=1000");
        if (!(Cholesky.factorLower(lf, 0, n, n) == Cholesky.OK)) fail("cholesky float n=1000");
        double[] v = randomD(r, n), w = new double[n], wf = new double[n];
        for (int i = 0; i < n; i++) for (int j = i; j < n; j++) {
            w[i] += l[j * n + i] * v[j];
            wf[i] += lf[j * n + i] * v[j];
        }
        for (int i = 0; i < n; i++) {
            double s = 0, sf = 0, av = 0;
            for (int j = 0; j <= i; j++) {
                s += l[i * n + j] * w[j];
                sf += lf[i * n + j] * wf[j];
            }
            for (int j = 0; j < n; j++) av += a[i * n + j] * v[j];
            if (!(Math.abs(s - av) <= 1e-10 * n)) fail("L L^T v != A v at " + i);
            if (!(Math.abs(sf - av) <= 1e-3 * n)) fail("float L L^T v != A v at " + i);
        }
    }

    /** Indefinite or NaN input: a failure index, never NaN in the output. */
    public static void choleskyFailure() {
        SplittableRandom r = new SplittableRandom(8);
        for (int n : new int[] {1, 7, 70, 200}) {
            for (int bad : new int[] {0, n / 2, n - 1}) {
                double[] a = spd(r, n);
                a[bad * n + bad] = -1 - n; // makes A indefinite
                float[] af = new float[n * n];
                for (int i = 0; i < a.length; i++) af[i] = (float) a[i];
                int info = Cholesky.factorLower(a, 0, n, n);
                int infoF = Cholesky.factorLower(af, 0, n, n);
                if (!(info >= 0 && info <= bad)) fail("indefinite double: info " + info + " bad " + bad + " n " + n);
                if (!(infoF >= 0 && infoF <= bad)) fail("indefinite float: info " + infoF);
                for (double x : a) if (Double.isNaN(x)) fail("NaN after failed double Cholesky");
                for (float x : af) if (Float.isNaN(x)) fail("NaN after failed float Cholesky");
                double[] h = spd(r, n);
                h[bad * n + bad] = -1 - n;
                double[] u = new double[n * n];
                int infoU = Cholesky.choleskyInverseUpper(h, 0, n, n, u, 0, n);
                if (!(infoU >= 0 && infoU < n)) fail("choleskyInverseUpper should fail: " + infoU);
                for (double x : u) if (Double.isNaN(x)) fail("NaN after failed choleskyInverseUpper");
                double[] hp = h.clone();
                if (Cholesky.choleskyInverseUpperInPlace(hp, n) != infoU) fail("in place: another failed pivot than " + infoU);
                for (double x : hp) if (x != 0) fail("in place: h not cleared after a failed pivot");
            }
        }
        double[] z = {1, 0, 0, Double.NaN};
        if (!(Cholesky.factorLower(z, 0, 2, 2) == 1)) fail("NaN pivot reported");
    }

    /** choleskyInverseUpper against the torch recipe done naively: U = chol_upper(inverse(H)). */
    public static void choleskyInverseUpper() {
        SplittableRandom r = new SplittableRandom(9);
        for (int n : new int[] {1, 7, 17, 33, 129, 300}) {
            double[] h = spd(r, n);
            double[] hi = naiveInverse(h, n);
            // naive Cholesky of H^-1 = L L^T, U = L^T
            double[] lo = new double[n * n];
            for (int i = 0; i < n; i++) for (int j = 0; j <= i; j++) {
                double s = hi[i * n + j];
                for (int p = 0; p < j; p++) s -= lo[i * n + p] * lo[j * n + p];
                lo[i * n + j] = i == j ? Math.sqrt(s) : s / lo[j * n + j];
            }
            int ldu = n + 1;
            double[] u = new double[n * ldu];
            Arrays.fill(u, Double.NaN);
            double[] hCopy = h.clone();
            if (!(Cholesky.choleskyInverseUpper(h, 0, n, n, u, 0, ldu) == Cholesky.OK))
                    fail("choleskyInverseUpper failed n=" + n);
            if (!Arrays.equals(h, hCopy)) fail("choleskyInverseUpper modified H");
            // in place on the full symmetric matrix: the same U, bit for bit (the same factor and inverse)
            double[] inPlace = h.clone(), ut = new double[n * n];
            Cholesky.choleskyInverseUpper(h, 0, n, n, ut, 0, n);
            if (Cholesky.choleskyInverseUpperInPlace(inPlace, n) != Cholesky.OK || !Arrays.equals(ut, inPlace))
                fail("choleskyInverseUpperInPlace differs from choleskyInverseUpper, n=" + n);
            float[] hf = new float[n * n], uf = new float[n * n];
            for (int i = 0; i < h.length; i++) hf[i] = (float) h[i];
            if (!(Cholesky.choleskyInverseUpper(hf, 0, n, n, uf, 0, n) == Cholesky.OK)) fail("float choleskyInverseUpper failed");
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
                double want = j >= i ? lo[j * n + i] : 0;
                if (!(Math.abs(u[i * ldu + j] - want) <= 1e-10))
                        fail("U[" + i + "," + j + "]=" + u[i * ldu + j] + " want " + want + " n=" + n);
                if (!(Math.abs(uf[i * n + j] - want) <= 1e-5)) fail("float U[" + i + "," + j + "]");
            }
        }
    }

    static double[] naiveInverse(double[] a, int n) {
        double[] m = a.clone(), inv = new double[n * n];
        for (int i = 0; i < n; i++) inv[i * n + i] = 1;
        for (int c = 0; c < n; c++) {
            int piv = c;
            for (int i = c + 1; i < n; i++) if (Math.abs(m[i * n + c]) > Math.abs(m[piv * n + c])) piv = i;
            for (int j = 0; j < n; j++) {
                double t = m[c * n + j]; m[c * n + j] = m[piv * n + j]; m[piv * n + j] = t;
                t = inv[c * n + j]; inv[c * n + j] = inv[piv * n + j]; inv[piv * n + j] = t;
            }
            double d = m[c * n + c];
            for (int j = 0; j < n; j++) { m[c * n + j] /= d; inv[c * n + j] /= d; }
            for (int i = 0; i < n; i++) {
                if (i == c) continue;
                double f = m[i * n + c];
                if (f == 0) continue;
                for (int j = 0; j < n; j++) { m[i * n + j] -= f * m[c * n + j]; inv[i * n + j] -= f * inv[c * n + j]; }
            }
        }
        return inv;
    }

    /** A well-conditioned triangular matrix in a padded array; the other triangle holds NaN. */
    static double[] triangle(SplittableRandom r, int n, int ldt, boolean upper) {
        double[] t = new double[n * ldt];
        Arrays.fill(t, Double.NaN);
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            if (upper ? j >= i : j <= i) t[i * ldt + j] = i == j ? 1.5 + r.nextDouble() : (r.nextDouble() * 2 - 1) / Math.sqrt(n);
        }
        return t;
    }

    public static void triangular() {
        SplittableRandom r = new SplittableRandom(10);
        for (boolean upper : BOOLS) for (boolean trans : BOOLS) {
            for (int n : new int[] {1, 7, 17, 33, 65, 129, 200}) for (int nrhs : new int[] {1, 7, 130}) {
                int ldt = n + 1, ldb = nrhs + 2;
                double[] t = triangle(r, n, ldt, upper);
                float[] tf = new float[t.length];
                for (int i = 0; i < t.length; i++) tf[i] = (float) t[i];
                // left: op(T) X = B
                double[] x = randomD(r, n * ldb), b = new double[n * ldb];
                mulLeft(upper, trans, n, nrhs, t, ldt, x, ldb, b);
                float[] bf = new float[b.length];
                for (int i = 0; i < b.length; i++) bf[i] = (float) b[i];
                Triangular.solveLeft(upper, trans, n, nrhs, t, 0, ldt, b, 0, ldb);
                Triangular.solveLeft(upper, trans, n, nrhs, tf, 0, ldt, bf, 0, ldb);
                for (int i = 0; i < n; i++) for (int j = 0; j < nrhs; j++) {
                    if (!(Math.abs(b[i * ldb + j] - x[i * ldb + j]) <= 1e-10))
                            fail("solveLeft upper=" + upper + " trans=" + trans + " n=" + n);
                    if (!(Math.abs(bf[i * ldb + j] - x[i * ldb + j]) <= 1e-3))
                            fail("float solveLeft upper=" + upper + " trans=" + trans + " n=" + n);
                }
                // right: X op(T) = B, X is [nrhs, n]
                int ldx = n + 3;
                double[] xr = randomD(r, nrhs * ldx), br = new double[nrhs * ldx];
                mulRight(upper, trans, nrhs, n, t, ldt, xr, ldx, br);
                float[] brf = new float[br.length];
                for (int i = 0; i < br.length; i++) brf[i] = (float) br[i];
                Triangular.solveRight(upper, trans, nrhs, n, t, 0, ldt, br, 0, ldx);
                Triangular.solveRight(upper, trans, nrhs, n, tf, 0, ldt, brf, 0, ldx);
                for (int i = 0; i < nrhs; i++) for (int j = 0; j < n; j++) {
                    if (!(Math.abs(br[i * ldx + j] - xr[i * ldx + j]) <= 1e-10))
                            fail("solveRight upper=" + upper + " trans=" + trans + " n=" + n);
                    if (!(Math.abs(brf[i * ldx + j] - xr[i * ldx + j]) <= 1e-3))
                            fail("float solveRight upper=" + upper + " trans=" + trans + " n=" + n);
                }
            }
        }
        for (boolean upper : BOOLS) for (int n : new int[] {1, 7, 17, 33, 64, 65, 129, 1000}) {
            int ldt = n + 2;
            double[] t = triangle(r, n, ldt, upper);
            double[] inv = t.clone();
            float[] invf = new float[t.length];
            for (int i = 0; i < t.length; i++) invf[i] = (float) t[i];
            Triangular.invert(upper, n, inv, 0, ldt);
            Triangular.invert(upper, n, invf, 0, ldt);
            // T * inv(T) == I, checked on a few columns for the big case
            int step = n > 200 ? 97 : 1;
            for (int j = 0; j < n; j += step) for (int i = 0; i < n; i++) {
                double s = 0, sf = 0;
                int p0 = upper ? i : 0, p1 = upper ? n : i + 1;
                for (int p = p0; p < p1; p++) {
                    boolean inInv = upper ? j >= p : j <= p;
                    if (!inInv) continue;
                    s += t[i * ldt + p] * inv[p * ldt + j];
                    sf += t[i * ldt + p] * invf[p * ldt + j];
                }
                double want = i == j ? 1 : 0;
                if (!(Math.abs(s - want) <= 1e-11)) fail("invert upper=" + upper + " n=" + n + " at " + i + "," + j);
                if (!(Math.abs(sf - want) <= 1e-4)) fail("float invert upper=" + upper + " n=" + n + " at " + i + "," + j);
            }
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
                if (upper ? j < i : j > i) {
                    if (!(Double.isNaN(inv[i * ldt + j]) && Float.isNaN(invf[i * ldt + j])))
                            fail("invert touched the other triangle");
                }
            }
        }
    }

    static double opT(boolean upper, boolean trans, double[] t, int ldt, int i, int j) {
        int r = trans ? j : i, c = trans ? i : j;
        boolean inside = upper ? c >= r : c <= r;
        return inside ? t[r * ldt + c] : 0;
    }

    static void mulLeft(boolean upper, boolean trans, int n, int nrhs, double[] t, int ldt, double[] x, int ldb, double[] b) {
        for (int i = 0; i < n; i++) for (int j = 0; j < nrhs; j++) {
            double s = 0;
            for (int p = 0; p < n; p++) s += opT(upper, trans, t, ldt, i, p) * x[p * ldb + j];
            b[i * ldb + j] = s;
        }
    }

    static void mulRight(boolean upper, boolean trans, int m, int n, double[] t, int ldt, double[] x, int ldx, double[] b) {
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < n; p++) s += x[i * ldx + p] * opT(upper, trans, t, ldt, p, j);
            b[i * ldx + j] = s;
        }
    }

    // ---------------------------------------------------------------- decomposition row ops and FWHT

    /** DecompUtil's dot / axpy / rotate (the Jacobi and Householder inner loops) against plain loops. */
    public static void decompRowOps() {
        SplittableRandom r = new SplittableRandom(11);
        for (int n : new int[] {0, 1, 2, 3, 5, 7, 8, 9, 17, 33, 129, 1000}) {
            double[] a = randomD(r, n + 3), b = randomD(r, n + 5);
            double want = 0, abs = 0;
            for (int i = 0; i < n; i++) {
                want += a[3 + i] * b[5 + i];
                abs += Math.abs(a[3 + i] * b[5 + i]);
            }
            double got = DecompUtil.dot(a, 3, b, 5, n);
            if (!(Math.abs(got - want) <= (n + 2) * 2.3e-16 * abs)) fail("dot n=" + n);
            double[] y = b.clone();
            DecompUtil.axpy(-0.75, a, 3, y, 5, n);
            for (int i = 0; i < b.length; i++) {
                double e = i >= 5 && i < 5 + n ? b[i] - 0.75 * a[i - 2] : b[i];
                if (!(Math.abs(y[i] - e) <= 4.5e-16 * (Math.abs(b[i]) + 1))) fail("axpy n=" + n + " at " + i);
            }
            // rows x = a[2..2+n), y = a[2+n+1..): rotate by an angle with c^2 + s^2 = 1
            double[] rows = randomD(r, 2 * n + 4), rot = rows.clone();
            double c = 0.6, sn = 0.8;
            DecompUtil.rotate(rot, 2, 3 + n, n, c, sn);
            for (int i = 0; i < rows.length; i++) {
                double e = rows[i];
                if (i >= 2 && i < 2 + n) e = c * rows[i] - sn * rows[i + n + 1];
                else if (i >= 3 + n && i < 3 + 2 * n) e = sn * rows[i - n - 1] + c * rows[i];
                if (!(Math.abs(rot[i] - e) <= 4.5e-16 * 2)) fail("rotate n=" + n + " at " + i);
            }
        }
    }

    /** Blas1.sum against a float64 sum, at awkward lengths and an offset; the same input always gives the same bits. */
    public static void blas1Sum() {
        SplittableRandom r = new SplittableRandom(13);
        for (int n : new int[] {0, 1, 7, 15, 16, 17, 33, 129, 1000, 4099}) {
            float[] x = randomF(r, n + 3);
            double want = 0, abs = 0;
            for (int i = 0; i < n; i++) {
                want += x[3 + i];
                abs += Math.abs(x[3 + i]);
            }
            float got = Blas1.sum(n, x, 3);
            if (!(Math.abs(got - want) <= (n + 2) * 6e-8 * abs + 1e-30)) fail("sum n=" + n + ": " + got + " vs " + want);
            if (Float.floatToRawIntBits(Blas1.sum(n, x.clone(), 3)) != Float.floatToRawIntBits(got)) fail("sum n=" + n + " not repeatable");
        }
        float[] nan = {1, 2, Float.NaN, 4};
        if (!Float.isNaN(Blas1.sum(4, nan, 0))) fail("sum must propagate NaN");
    }

    /** The normalised FWHT against the explicit Sylvester Hadamard matrix, with an offset. */
    public static void fwht() {
        SplittableRandom r = new SplittableRandom(12);
        for (int n = 1; n <= 2048; n *= 2) {
            float[] x = randomF(r, n + 5);
            float[] orig = x.clone();
            Fwht.transform(x, 5, n);
            double norm = 1 / Math.sqrt(n);
            for (int i = 0; i < n; i++) {
                double s = 0, mag = 0;
                for (int j = 0; j < n; j++) {
                    s += (Integer.bitCount(i & j) % 2 == 0 ? 1 : -1) * orig[5 + j];
                    mag += Math.abs(orig[5 + j]);
                }
                if (!(Math.abs(s * norm - x[5 + i]) <= 1e-6 * mag * norm + 1e-7)) fail("fwht n=" + n + " at " + i);
            }
            for (int i = 0; i < 5; i++) if (!(x[i] == orig[i])) fail("fwht wrote before its range");
        }
    }

    /** Names of all checks, in the order VectorWidthTest runs them. */
    public static final String[] ALL = {"sgemmFacade", "sgemmPacked", "dgemm", "triangleRestriction", "sgemv",
            "syrk", "syrkPrecision", "cholesky", "choleskyFailure", "choleskyInverseUpper", "triangular", "decompRowOps",
            "blas1Sum", "fwht"};
}
