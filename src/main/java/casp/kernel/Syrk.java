package casp.kernel;

/**
 * Symmetric rank-k updates: the Hessian accumulation H += X^T X of GPTQ and SVD-LLM.
 *
 * <p>Only the lower triangle is computed (half the work of a GEMM), by the packed GEMM driver
 * restricted to j <= i; the upper triangle is then mirrored. For the float64 accumulator, X is
 * consumed in blocks of {@link #TOKEN_BLOCK} tokens: each block's product is formed in float32 at
 * full SIMD speed and then added to the double H, so a sum over millions of tokens keeps float64
 * precision while the long inner sums stay in fast float32.
 */
public final class Syrk {
    private Syrk() {}

    /** Tokens per float32 block before it is folded into the float64 accumulator. */
    public static final int TOKEN_BLOCK = 2048;
    /** Rows of H handled at once when d is large (bounds the float32 scratch to ROW_PANEL x d). */
    static final int ROW_PANEL = 1024;
    /** The float32 panel of the calling thread (only its first rows x cols are used, after beta = 0 writes them). */
    private static final ThreadLocal<float[]> PANEL = new ThreadLocal<>();

    /**
     * H += X^T X, X [tokens, d] row-major at x[offX + t * ldx + i], H [d, d] row-major double at
     * h[offH + i * ldh + j]. H must be symmetric on entry (only its lower triangle is read); on
     * return both triangles hold the updated symmetric matrix.
     */
    public static void accumulate(float[] x, int offX, int ldx, int tokens, int d, double[] h, int offH, int ldh) {
        if (d <= 0) return;
        if (tokens > 0) {
            int ph = Math.min(d, ROW_PANEL);
            float[] panel = SgemmDriver.buffer(PANEL, ph * d); // reused: a fresh 4 MB array per call costs page faults and GC
            for (int t0 = 0; t0 < tokens; t0 += TOKEN_BLOCK) {
                int tb = Math.min(TOKEN_BLOCK, tokens - t0);
                int xOff = offX + t0 * ldx;
                for (int r0 = 0; r0 < d; r0 += ph) {
                    int rows = Math.min(ph, d - r0), cols = r0 + rows;
                    // panel[i, j] = sum_t X[t, r0 + i] X[t, j] for j <= r0 + i
                    SgemmDriver.gemm(true, false, rows, cols, tb, 1f, x, xOff + r0, ldx, x, xOff, ldx,
                            0f, panel, 0, cols, r0);
                    fold(panel, cols, rows, r0, h, offH, ldh);
                }
            }
        }
        mirrorLower(d, h, offH, ldh);
    }

    /** H[r0 + i, j] += panel[i, j] for j <= r0 + i, split over the pool by rows. */
    private static void fold(float[] panel, int ldp, int rows, int r0, double[] h, int offH, int ldh) {
        int tasks = (long) rows * ldp >= (1 << 16) ? Parallel.threads() : 1;
        Parallel.forRange(tasks, q -> {
            // Balance the triangle: row i holds r0 + i + 1 elements.
            int i0 = split(rows, r0, q, tasks), i1 = split(rows, r0, q + 1, tasks);
            for (int i = i0; i < i1; i++) {
                int hi = offH + (r0 + i) * ldh, pi = i * ldp;
                int len = r0 + i + 1;
                Blas1.addWidened(len, panel, pi, h, hi);
            }
        });
    }

    /** Row where part q of tasks starts, so that parts hold about equal numbers of lower-triangle elements. */
    private static int split(int rows, int r0, int q, int tasks) {
        if (q == 0) return 0;
        if (q == tasks) return rows;
        double total = (double) rows * r0 + (double) rows * (rows + 1) / 2;
        double target = total * q / tasks;
        // elements in rows [0, i): i * r0 + i (i + 1) / 2 -- solve for i
        double i = -(r0 + 0.5) + Math.sqrt((r0 + 0.5) * (r0 + 0.5) + 2 * target);
        return (int) Math.max(0, Math.min(rows, Math.round(i)));
    }

    /**
     * Float SYRK on the lower triangle: C = alpha * X^T X + beta * C for j <= i, X [tokens, d]
     * row-major, C [d, d]. The strict upper triangle of C is neither read nor written.
     */
    public static void ssyrkLower(int tokens, int d, float alpha, float[] x, int offX, int ldx,
                                  float beta, float[] c, int offC, int ldc) {
        SgemmDriver.gemm(true, false, d, d, tokens, alpha, x, offX, ldx, x, offX, ldx, beta, c, offC, ldc, 0);
    }

    /** Copies the lower triangle of the n x n matrix onto its upper triangle. */
    public static void mirrorLower(int n, double[] a, int off, int lda) {
        // In 8 x 8 tiles (one cache line of doubles per row of a tile), so each column-wise write
        // lands in a line the tile has just touched: 1024 x 1024 in ~0.9 ms, 2.1 ms with 64 x 64.
        final int tile = 8;
        for (int i0 = 0; i0 < n; i0 += tile) {
            int i1 = Math.min(n, i0 + tile);
            for (int j0 = 0; j0 <= i0; j0 += tile) {
                for (int i = i0; i < i1; i++) {
                    int jEnd = Math.min(i, j0 + tile);
                    for (int j = j0; j < jEnd; j++) a[off + j * lda + i] = a[off + i * lda + j];
                }
            }
        }
    }
}
