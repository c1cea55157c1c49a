package casp.kernel;

/**
 * Dense matrix products on row-major arrays: GEMM (float and double) and GEMV (float).
 *
 * <p>All matrices are row-major with an offset and a leading dimension (the distance between the
 * starts of two consecutive rows, at least the row length). Large products run the blocked,
 * packed SIMD kernels of {@link SgemmDriver}/{@link DgemmDriver} on the shared {@link Parallel}
 * pool; tiny ones run a plain loop; products with one row or one column run as GEMV.
 */
public final class Gemm {
    private Gemm() {}

    /** At or below this many multiply-adds a plain loop beats packing. */
    private static final long SMALL_FMA = 4096;

    /**
     * Single-precision GEMM on row-major arrays: C = alpha * op(A) * op(B) + beta * C.
     *
     * <p>op(A) is [m, k], op(B) is [k, n], C is [m, n]. With transA, A is stored as [k, m] (lda >= m);
     * otherwise as [m, k] (lda >= k). Likewise for B. With beta == 0, C is only written (NaN or
     * garbage in C does not propagate). m, n or k may be 0.
     */
    public static void sgemm(boolean transA, boolean transB, int m, int n, int k,
                             float alpha, float[] a, int offA, int lda,
                             float[] b, int offB, int ldb,
                             float beta, float[] c, int offC, int ldc) {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0) {
            SgemmDriver.scale(m, n, beta, c, offC, ldc, SgemmDriver.FULL);
            return;
        }
        long fma = (long) m * n * k;
        if (fma <= SMALL_FMA) {
            smallSgemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
        } else if (m == 1) {
            // One row of C: c = alpha * op(B)^T a + beta c, a GEMV over B.
            float[] x = a;
            int offX = offA;
            if (transA) { // the row of op(A) is a column of A: gather it
                x = new float[k];
                for (int p = 0; p < k; p++) x[p] = a[offA + p * lda];
                offX = 0;
            }
            // op(B) = B^T when transB: B is stored [n, k] and c = B x; otherwise B is [k, n] and c = B^T x.
            sgemv(!transB, transB ? n : k, transB ? k : n, alpha, b, offB, ldb, x, offX, beta, c, offC);
        } else if (n == 1 && ldc == 1) {
            // One contiguous column of C: c = alpha * op(A) b + beta c.
            float[] x = b;
            int offX = offB;
            if (!transB) { // the column of op(B) = B is strided: gather it
                x = new float[k];
                for (int p = 0; p < k; p++) x[p] = b[offB + p * ldb];
                offX = 0;
            }
            sgemv(transA, transA ? k : m, transA ? m : k, alpha, a, offA, lda, x, offX, beta, c, offC);
        } else {
            SgemmDriver.gemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc,
                    SgemmDriver.FULL);
        }
    }

    /**
     * Double-precision GEMM with the same conventions as {@link #sgemm}: C = alpha op(A) op(B) + beta C.
     */
    public static void dgemm(boolean transA, boolean transB, int m, int n, int k,
                             double alpha, double[] a, int offA, int lda,
                             double[] b, int offB, int ldb,
                             double beta, double[] c, int offC, int ldc) {
        if (m <= 0 || n <= 0) return;
        if ((long) m * n * k <= SMALL_FMA && k > 0 && alpha != 0) {
            smallDgemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc);
            return;
        }
        DgemmDriver.gemm(transA, transB, m, n, k, alpha, a, offA, lda, b, offB, ldb, beta, c, offC, ldc,
                DgemmDriver.FULL);
    }

    /**
     * Float matrix-vector product y = alpha * op(A) x + beta * y, A stored row-major as [m, n].
     * Without trans, x has n elements and y has m (one dot product per row); with trans, x has m
     * and y has n. Vectorised, and split over the pool by rows (or columns) when A is large.
     * With beta == 0, y is only written.
     */
    public static void sgemv(boolean trans, int m, int n, float alpha, float[] a, int offA, int lda,
                             float[] x, int offX, float beta, float[] y, int offY) {
        if (m < 0 || n < 0) throw new IllegalArgumentException("negative size " + m + " x " + n);
        int ylen = trans ? n : m;
        if (ylen == 0) return;
        int xlen = trans ? m : n;
        if (xlen == 0 || alpha == 0) {
            for (int i = 0; i < ylen; i++) y[offY + i] = beta == 0 ? 0f : beta * y[offY + i];
            return;
        }
        boolean big = (long) m * n >= (1L << 16);
        int tasks = big ? Parallel.threads() : 1;
        GemvTask task = GEMV.get();
        task.set(trans, m, n, alpha, a, offA, lda, x, offX, beta, y, offY, tasks);
        if (task.parts == 1) task.accept(0);
        else Parallel.forRange(task.parts, task);
        task.set(false, 0, 0, 0f, null, 0, 0, null, 0, 0f, null, 0, 1); // holds no caller's arrays between calls
    }

    /** Each calling thread's mat-vec task, reused by every call so that a decode step allocates nothing. */
    private static final ThreadLocal<GemvTask> GEMV = ThreadLocal.withInitial(GemvTask::new);

    /**
     * One sgemv split in parts: without trans, part t takes a block of rows; with trans, y = alpha
     * A^T x + beta y is split in chunks of at most 2048 columns (each thread's slice of y stays in
     * L1 while the rows stream by), dealt round-robin to the parts.
     */
    private static final class GemvTask implements java.util.function.IntConsumer {
        boolean trans;
        int m, n, offA, lda, offX, offY, parts, chunk, chunks;
        float alpha, beta;
        float[] a, x, y;

        void set(boolean trans, int m, int n, float alpha, float[] a, int offA, int lda, float[] x, int offX,
                 float beta, float[] y, int offY, int tasks) {
            this.trans = trans;
            this.m = m;
            this.n = n;
            this.alpha = alpha;
            this.a = a;
            this.offA = offA;
            this.lda = lda;
            this.x = x;
            this.offX = offX;
            this.beta = beta;
            this.y = y;
            this.offY = offY;
            if (!trans) {
                parts = Math.max(1, Math.min(tasks, (m + 3) / 4));
            } else {
                chunk = Math.max(1, Math.min(2048, (n + tasks - 1) / tasks));
                chunks = (n + chunk - 1) / chunk;
                parts = Math.max(1, Math.min(tasks, chunks));
            }
        }

        @Override
        public void accept(int t) {
            if (!trans) {
                int r0 = (int) ((long) m * t / parts), r1 = (int) ((long) m * (t + 1) / parts);
                if (VectorSupport.enabled()) {
                    GemvSimd.rows(r0, r1, n, alpha, a, offA, lda, x, offX, beta, y, offY);
                } else {
                    for (int r = r0; r < r1; r++) {
                        float s = 0;
                        int ar = offA + r * lda;
                        for (int j = 0; j < n; j++) s += a[ar + j] * x[offX + j];
                        y[offY + r] = beta == 0 ? alpha * s : alpha * s + beta * y[offY + r];
                    }
                }
                return;
            }
            for (int q = t; q < chunks; q += parts) {
                int j0 = q * chunk, j1 = Math.min(n, j0 + chunk);
                for (int j = j0; j < j1; j++) y[offY + j] = beta == 0 ? 0f : beta * y[offY + j];
                if (VectorSupport.enabled()) {
                    GemvSimd.columns(j0, j1, m, alpha, a, offA, lda, x, offX, y, offY);
                } else {
                    for (int i = 0; i < m; i++) {
                        float xi = alpha * x[offX + i];
                        int ai = offA + i * lda;
                        for (int j = j0; j < j1; j++) y[offY + j] += xi * a[ai + j];
                    }
                }
            }
        }
    }

    /** y = A x for row-major A [m, n] (x has n elements, y has m): a shorthand for {@link #sgemv}. */
    public static void matVec(int m, int n, float[] a, int offA, int lda, float[] x, int offX, float[] y, int offY) {
        sgemv(false, m, n, 1f, a, offA, lda, x, offX, 0f, y, offY);
    }

    private static void smallSgemm(boolean transA, boolean transB, int m, int n, int k,
                                   float alpha, float[] a, int offA, int lda, float[] b, int offB, int ldb,
                                   float beta, float[] c, int offC, int ldc) {
        for (int i = 0; i < m; i++) {
            int ci = offC + i * ldc;
            for (int j = 0; j < n; j++) {
                float s = 0;
                for (int p = 0; p < k; p++) {
                    float av = transA ? a[offA + p * lda + i] : a[offA + i * lda + p];
                    float bv = transB ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
                    s += av * bv;
                }
                c[ci + j] = beta == 0 ? alpha * s : alpha * s + beta * c[ci + j];
            }
        }
    }

    private static void smallDgemm(boolean transA, boolean transB, int m, int n, int k,
                                   double alpha, double[] a, int offA, int lda, double[] b, int offB, int ldb,
                                   double beta, double[] c, int offC, int ldc) {
        for (int i = 0; i < m; i++) {
            int ci = offC + i * ldc;
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double av = transA ? a[offA + p * lda + i] : a[offA + i * lda + p];
                    double bv = transB ? b[offB + j * ldb + p] : b[offB + p * ldb + j];
                    s += av * bv;
                }
                c[ci + j] = beta == 0 ? alpha * s : alpha * s + beta * c[ci + j];
            }
        }
    }
}
