package casp.kernel;

/**
 * Loops of additive (multi-codebook) vector quantization, AQLM's form of a weight
 * (ALGORITHMS.md section 8): a row of W is cut into groups of {@link #DIM} inputs, and each group is
 * the sum of one codeword from each of M codebooks of K entries, times a per-row scale:
 * {@code W[r, 8g + i] = scale[r] * sum_m C_m[codes[(r * groups + g) * M + m]][i]}.
 *
 * <p>Codebooks are held flat, codebook-major: the codeword k of codebook m starts at
 * {@code (m * K + k) * DIM}; this is also the AQLM tensor layout [M, K, 1, 8]. Codes are plain ints
 * in [0, K) in the AQLM layout [rows, groups, M].
 *
 * <p>The quantizer's search runs in double (its objective differences are small against the
 * objective), the runtime decode in float. Every loop here is short and branch-free over the 8
 * coordinates of a group; the JIT unrolls them.
 */
public final class AdditiveQuant {
    private AdditiveQuant() {}

    /** Inputs per group (AQLM's in_group_size). */
    public static final int DIM = 8;

    private static final boolean STRIP_SIMD = VectorSupport.enabled() && AdditiveQuantSimd.usable();

    /**
     * Decodes W: out[r * cols + c] for c < cols (a row may have fewer columns than groups * 8: the
     * last group's extra coordinates are dropped).
     *
     * @param codes     [rows, groups, m] in [0, k)
     * @param codebooks [m, k, 8]
     * @param scales    [rows]
     */
    public static void decode(int[] codes, int rows, int groups, int m, float[] codebooks, int k, float[] scales,
                              int cols, float[] out) {
        float[] acc = new float[groups * DIM];
        for (int r = 0; r < rows; r++) {
            java.util.Arrays.fill(acc, 0f);
            int cBase = r * groups * m;
            for (int g = 0; g < groups; g++) {
                for (int b = 0; b < m; b++) {
                    int cw = (b * k + codes[cBase + g * m + b]) * DIM;
                    for (int i = 0; i < DIM; i++) acc[g * DIM + i] += codebooks[cw + i];
                }
            }
            float s = scales[r];
            for (int c = 0; c < cols; c++) out[r * cols + c] = s * acc[c];
        }
    }

    /**
     * Double twin of {@link #decode(int[], int, int, int, float[], int, float[], int, float[])} writing
     * whole groups (out is [rows, groups * 8]); scales may be null (unscaled sums of codewords).
     */
    public static void decode(int[] codes, int rows, int groups, int m, double[] codebooks, int k, double[] scales,
                              double[] out) {
        int cols = groups * DIM;
        for (int r = 0; r < rows; r++) {
            int o = r * cols, cBase = r * groups * m;
            java.util.Arrays.fill(out, o, o + cols, 0);
            for (int g = 0; g < groups; g++) {
                for (int b = 0; b < m; b++) {
                    int cw = (b * k + codes[cBase + g * m + b]) * DIM;
                    for (int i = 0; i < DIM; i++) out[o + g * DIM + i] += codebooks[cw + i];
                }
            }
            if (scales != null) {
                double s = scales[r];
                for (int c = 0; c < cols; c++) out[o + c] *= s;
            }
        }
    }

    /**
     * out[outOff + j] = c_j^T H8 c_j for count codewords c_j = cb[off + 8j .. off + 8j + 8), with H8
     * the 8 x 8 block at h[hOff + i * ldh + l] (symmetric; both triangles read).
     */
    public static void quadraticForms(double[] cb, int off, int count, double[] h, int hOff, int ldh,
                                      double[] out, int outOff) {
        double[] h8 = new double[DIM * DIM];
        for (int i = 0; i < DIM; i++) System.arraycopy(h, hOff + i * ldh, h8, i * DIM, DIM);
        for (int j = 0; j < count; j++) {
            int c = off + j * DIM;
            double q = 0;
            for (int i = 0; i < DIM; i++) {
                double hi = 0;
                for (int l = 0; l < DIM; l++) hi += h8[i * DIM + l] * cb[c + l];
                q += cb[c + i] * hi;
            }
            out[outOff + j] = q;
        }
    }

    /**
     * Scores count codewords c_j (from cb[off + 8j]) against a linear term a (8 values at aOff):
     * score_j = alpha * norms[nOff + j] - 2 a . c_j. Writes them to out[outOff + j] when out is not
     * null, and returns the index of the smallest (the first one on ties).
     *
     * <p>With norms = |c_j|^2 and alpha = 1 the score is |x - c_j|^2 - |x|^2 for a = x: the
     * nearest-codeword search of k-means. With norms = c_j^T H8 c_j it is the change of a quadratic
     * objective when a group's codeword is replaced (see casp.quant.aqlm.Aqlm).
     */
    public static int scores(double[] cb, int off, int count, double[] norms, int nOff, double alpha,
                             double[] a, int aOff, double[] out, int outOff) {
        double a0 = 2 * a[aOff], a1 = 2 * a[aOff + 1], a2 = 2 * a[aOff + 2], a3 = 2 * a[aOff + 3];
        double a4 = 2 * a[aOff + 4], a5 = 2 * a[aOff + 5], a6 = 2 * a[aOff + 6], a7 = 2 * a[aOff + 7];
        int best = 0;
        double bestScore = Double.POSITIVE_INFINITY;
        for (int j = 0; j < count; j++) {
            int c = off + j * DIM;
            double dot = a0 * cb[c] + a1 * cb[c + 1] + a2 * cb[c + 2] + a3 * cb[c + 3]
                    + a4 * cb[c + 4] + a5 * cb[c + 5] + a6 * cb[c + 6] + a7 * cb[c + 7];
            double s = alpha * norms[nOff + j] - dot;
            if (out != null) out[outOff + j] = s;
            if (s < bestScore) {
                bestScore = s;
                best = j;
            }
        }
        return best;
    }

    /**
     * a[i] = alpha (H8 u)[i] + beta t[tOff + i] for i < 8, with H8 the 8 x 8 block at
     * h[hOff + i * ldh + l] and u = cb[uOff .. uOff + 8): the linear term of a codeword search.
     */
    public static void linearTerm(double[] h, int hOff, int ldh, double[] cb, int uOff, double alpha,
                                  double[] t, int tOff, double beta, double[] a) {
        for (int i = 0; i < DIM; i++) {
            int hr = hOff + i * ldh;
            double acc = 0;
            for (int l = 0; l < DIM; l++) acc += h[hr + l] * cb[uOff + l];
            a[i] = alpha * acc + beta * t[tOff + i];
        }
    }

    /**
     * k-means assignment: for the points p in [from, to) (8 values each at x[8p]), the index of the
     * nearest of count codewords (Euclidean; norms[j] = |c_j|^2 from cb[cbOff + 8j]) into assign[p].
     *
     * @return how many assignments changed
     */
    public static int assignNearest(double[] x, int from, int to, double[] cb, int cbOff, int count, double[] norms,
                                    int[] assign) {
        int changed = 0;
        for (int p = from; p < to; p++) {
            int k = scores(cb, cbOff, count, norms, 0, 1, x, p * DIM, null, 0);
            if (k != assign[p]) changed++;
            assign[p] = k;
        }
        return changed;
    }

    /** sums[8k + i] += x[8p + i] and counts[k]++ with k = assign[p], for the n points p. */
    public static void clusterSums(double[] x, int n, int[] assign, double[] sums, int[] counts) {
        for (int p = 0; p < n; p++) {
            int k = assign[p];
            counts[k]++;
            for (int i = 0; i < DIM; i++) sums[k * DIM + i] += x[p * DIM + i];
        }
    }

    /** x[8p + i] -= cb[cbOff + 8 assign[p] + i] for the n points p: the residual after a codebook. */
    public static void subtractAssigned(double[] x, int n, int[] assign, double[] cb, int cbOff) {
        for (int p = 0; p < n; p++) {
            int c = cbOff + assign[p] * DIM;
            for (int i = 0; i < DIM; i++) x[p * DIM + i] -= cb[c + i];
        }
    }

    /**
     * Adds weight * H[8 g .., 8 g_q ..] (an 8 x 8 block of H) to the block (u, u_q) of A for every
     * entry q of a row with u_q <= u: what the row's entry (u, g) adds to strip u (block row u) of
     * the lower triangle of the codebooks' normal equations sum_r s_r^2 P_r^T H P_r, where entry q
     * selects unknown block u_q (a codeword) for group g_q. Calling it for every entry of a row adds
     * the row's whole share; blocks above the diagonal are not written (their transposes are), a
     * diagonal block gets whole blocks, so its strict upper triangle holds junk the Cholesky
     * factorization does not read. Writing one strip per call lets callers give strips to threads
     * and keep a strip in cache while the rows that use its codeword pass.
     *
     * @param a      [n, n] row-major, n = 8 * number of unknown blocks
     * @param unk    unknown block of each entry of the row, from unkOff
     * @param group  input group of each entry
     * @param h      [ldh, ldh] row-major (ldh = 8 * groups)
     */
    public static void addGramStrip(double[] a, int lda, int u, int g, int[] unk, int unkOff, int[] group, int count,
                                    double[] h, int ldh, double weight) {
        if (STRIP_SIMD) {
            AdditiveQuantSimd.addGramStrip(a, lda, u, g, unk, unkOff, group, count, h, ldh, weight);
            return;
        }
        int up = u * DIM, hp = g * DIM * ldh;
        for (int q = 0; q < count; q++) {
            int uq = unk[unkOff + q];
            if (uq > u) continue;
            int aBase = up * lda + uq * DIM, hBase = hp + group[q] * DIM;
            for (int i = 0; i < DIM; i++) {
                int ar = aBase + i * lda, hr = hBase + i * ldh;
                for (int l = 0; l < DIM; l++) a[ar + l] += weight * h[hr + l];
            }
        }
    }

    /** b[8 u_p + i] += weight * y[yOff + 8 g_p + i] for the count entries p (u_p = unk[unkOff + p]) and i < 8. */
    public static void addRhsBlocks(double[] b, int[] unk, int unkOff, int[] group, int count, double[] y, int yOff,
                                    double weight) {
        for (int p = 0; p < count; p++) {
            int bo = unk[unkOff + p] * DIM, yo = yOff + group[p] * DIM;
            for (int i = 0; i < DIM; i++) b[bo + i] += weight * y[yo + i];
        }
    }

    /** Codebooks [m, k, 8] transposed to [m, 8, k]: the lookup table's loop then runs over contiguous codewords. */
    public static float[] transposeCodebooks(float[] codebooks, int m, int k) {
        float[] t = new float[codebooks.length];
        for (int b = 0; b < m; b++)
            for (int j = 0; j < k; j++)
                for (int i = 0; i < DIM; i++) t[(b * DIM + i) * k + j] = codebooks[(b * k + j) * DIM + i];
        return t;
    }

    /**
     * Codes [rows, gm] (gm = groups * m) transposed to [gm, rows] as unsigned 16-bit values: the
     * layout of the lookup mat-vec, which runs through one (group, codebook) table at a time.
     */
    public static char[] transposeCodes(int[] codes, int rows, int gm) {
        char[] t = new char[codes.length];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < gm; j++) t[j * rows + r] = (char) codes[r * gm + j];
        return t;
    }

    /** Below this many code lookups a mat-vec stays on the calling thread. */
    private static final int PARALLEL_LOOKUPS = 1 << 18;

    /**
     * Mat-vec straight from the codes, without forming W: y[r] = scale[r] * sum_{g, m}
     * lut[g, m, codes[r, g, m]] with lut[g, m, j] = C_m[j] . x[8g .. 8g + 8) (x zero beyond cols).
     * Costs groups * m * k * 8 for the tables plus rows * groups * m lookups: cheaper than the
     * rows * cols of a dense mat-vec when rows is well above k. The lookups run table by table
     * (one k-entry table stays in L1 while the codes stream), rows split over the pool when there
     * are many.
     *
     * @param codesT     the codes as {@link #transposeCodes} gives them, [groups * m, rows]
     * @param codebooksT the codebooks as {@link #transposeCodebooks} gives them, [m, 8, k]
     * @param lut        scratch of at least groups * m * k floats
     * @param xg         scratch of at least groups * 8 floats
     */
    public static void matvec(char[] codesT, int rows, int groups, int m, float[] codebooksT, int k, float[] scales,
                              int cols, float[] x, int xOff, float[] y, int yOff, float[] lut, float[] xg) {
        java.util.Arrays.fill(xg, 0, groups * DIM, 0f);
        System.arraycopy(x, xOff, xg, 0, cols);
        for (int g = 0; g < groups; g++) {
            for (int b = 0; b < m; b++) table(codebooksT, b * DIM * k, k, xg, g * DIM, lut, (g * m + b) * k);
        }
        int gm = groups * m;
        int tasks = (long) rows * gm >= PARALLEL_LOOKUPS ? Math.min(Parallel.threads() * 4, rows) : 1;
        if (tasks == 1) {
            lookupRows(codesT, rows, 0, rows, gm, k, lut, scales, y, yOff);
            return;
        }
        LookupTask task = LOOKUP.get();
        task.set(codesT, rows, gm, k, lut, scales, y, yOff, tasks);
        Parallel.forRange(tasks, task);
        task.set(null, 0, 0, 0, null, null, null, 0, 1); // holds no caller's arrays between calls
    }

    /** Each calling thread's lookup task, reused by every call so that a decode step allocates nothing. */
    private static final ThreadLocal<LookupTask> LOOKUP = ThreadLocal.withInitial(LookupTask::new);

    /** The table lookups of one mat-vec split in tasks of rows. */
    private static final class LookupTask implements java.util.function.IntConsumer {
        char[] codesT;
        float[] lut, scales, y;
        int rows, gm, k, yOff, tasks;

        void set(char[] codesT, int rows, int gm, int k, float[] lut, float[] scales, float[] y, int yOff, int tasks) {
            this.codesT = codesT;
            this.rows = rows;
            this.gm = gm;
            this.k = k;
            this.lut = lut;
            this.scales = scales;
            this.y = y;
            this.yOff = yOff;
            this.tasks = tasks;
        }

        @Override
        public void accept(int t) {
            lookupRows(codesT, rows, (int) ((long) rows * t / tasks), (int) ((long) rows * (t + 1) / tasks), gm, k, lut, scales, y, yOff);
        }
    }

    /** lut[lo + j] = sum_i cT[c + i k + j] x[xo + i], one pass over the k codewords. */
    private static void table(float[] cT, int c, int k, float[] x, int xo, float[] lut, int lo) {
        float x0 = x[xo], x1 = x[xo + 1], x2 = x[xo + 2], x3 = x[xo + 3];
        float x4 = x[xo + 4], x5 = x[xo + 5], x6 = x[xo + 6], x7 = x[xo + 7];
        for (int j = 0; j < k; j++) {
            int p = c + j;
            lut[lo + j] = ((cT[p] * x0 + cT[p + k] * x1) + (cT[p + 2 * k] * x2 + cT[p + 3 * k] * x3))
                    + ((cT[p + 4 * k] * x4 + cT[p + 5 * k] * x5) + (cT[p + 6 * k] * x6 + cT[p + 7 * k] * x7));
        }
    }

    /** Rows [r0, r1) of the lookup mat-vec. */
    private static void lookupRows(char[] codesT, int rows, int r0, int r1, int gm, int k, float[] lut, float[] scales,
                                   float[] y, int yOff) {
        java.util.Arrays.fill(y, yOff + r0, yOff + r1, 0f);
        int j = 0;
        for (; j + 4 <= gm; j += 4) { // four tables per pass: one load and store of y per four lookups
            int b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
            int c0 = j * rows, c1 = c0 + rows, c2 = c1 + rows, c3 = c2 + rows;
            for (int r = r0; r < r1; r++) {
                y[yOff + r] += (lut[b0 + codesT[c0 + r]] + lut[b1 + codesT[c1 + r]])
                        + (lut[b2 + codesT[c2 + r]] + lut[b3 + codesT[c3 + r]]);
            }
        }
        for (; j < gm; j++) {
            int base = j * k, c = j * rows;
            for (int r = r0; r < r1; r++) y[yOff + r] += lut[base + codesT[c + r]];
        }
        for (int r = r0; r < r1; r++) y[yOff + r] *= scales[r];
    }
}
