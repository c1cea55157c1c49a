package casp.kernel;

/**
 * Single-precision GEMM on row-major arrays: C = alpha * op(A) * op(B) + beta * C.
 *
 * <p>op(A) is [m, k], op(B) is [k, n], C is [m, n]. With transA, A is stored as [k, m] (lda >= m);
 * otherwise as [m, k] (lda >= k). Likewise for B. This is the stable facade the layers above call;
 * the implementation behind it is the kernel package's business.
 */
public final class Gemm {
    private Gemm() {}

    public static void sgemm(boolean transA, boolean transB, int m, int n, int k,
                             float alpha, float[] a, int offA, int lda,
                             float[] b, int offB, int ldb,
                             float beta, float[] c, int offC, int ldc) {
        // Interim reference implementation (correct, not fast); replaced by the packed SIMD kernel.
        for (int i = 0; i < m; i++) {
            int ci = offC + i * ldc;
            for (int j = 0; j < n; j++) c[ci + j] = beta == 0f ? 0f : beta * c[ci + j];
            for (int p = 0; p < k; p++) {
                float av = alpha * (transA ? a[offA + p * lda + i] : a[offA + i * lda + p]);
                if (av == 0f) continue;
                if (!transB) {
                    int bp = offB + p * ldb;
                    for (int j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
                } else {
                    for (int j = 0; j < n; j++) c[ci + j] += av * b[offB + j * ldb + p];
                }
            }
        }
    }
}
