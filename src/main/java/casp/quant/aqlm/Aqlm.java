package casp.quant.aqlm;

import casp.kernel.AdditiveQuant;
import casp.kernel.Blas1;
import casp.kernel.Cholesky;
import casp.kernel.Fp16;
import casp.kernel.Gemm;
import casp.kernel.Parallel;
import casp.kernel.Triangular;
import casp.quant.Quantizer;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * AQLM, additive quantization of a linear layer (Egiazarian et al. 2024; ALGORITHMS.md section 8),
 * with the codebook step done by an exact least-squares solve instead of AQLM's Adam.
 *
 * <p>Each row of W [rows, cols] is cut into groups of 8 inputs; a group is approximated by the sum
 * of one codeword from each of M codebooks of K = 2^B entries (shared by the whole layer), times a
 * per-row scale: Ŵ[r, 8g..8g+8) = s_r sum_m C_m[code(r, g, m)]. With M B / 8 bits per weight of
 * codes (2x8 and 1x16 are 2 bits) plus the codebooks and scales. The objective is GPTQ's proxy
 * loss L = tr((W - Ŵ) H (W - Ŵ)^T). Steps:
 * <ol>
 *   <li>Init: s_r = |w_r| (AQLM's choice), then residual k-means on the normalized row groups: codebook
 *       m is a k-means of what codebooks 0..m-1 left over.</li>
 *   <li>Codebook update: for fixed codes and scales Ŵ is linear in the codebooks, so the L-optimal
 *       codebooks solve normal equations A c = b with A = sum_r s_r^2 P_r^T H P_r (P_r maps
 *       codeword coordinates to row r) and b = sum_r s_r P_r^T H w_r: one Cholesky of an
 *       M K 8 square system (4096 for 2x8), or, above {@link Options#jointLimit}, one per codebook
 *       with the others fixed. A tiny ridge toward the current codebooks keeps codewords no row uses
 *       (zero rows of A) where they are. Then the scales, one closed-form 1-D least squares per row
 *       (s_r = w_r H q_r^T / q_r H q_r^T with q_r the unscaled decoded row).</li>
 *   <li>Code update, a beam search per row (rows are independent for fixed codebooks): visit the
 *       (group, codebook) positions in order; for every hypothesis in the beam score all K
 *       replacements of that position by the incremental expansion of L,
 *       ΔL = s^2 v H_gg v - 2 v . (s t_g + s^2 H_gg u) - (same at v = u), with u the current
 *       codeword and t = (w - ŵ) H kept up to date (an 8-row update of t per accepted change);
 *       keep the best beamWidth distinct code vectors. Keeping a code is always a candidate, so
 *       the best loss in the beam never increases.</li>
 *   <li>Alternate codes / codebooks / scales for {@link Options#iterations} rounds or until a round
 *       gains less than {@link Options#relTolerance}. Each step is exact for its variables, so L
 *       never increases (the history is kept: {@link AqlmWeight#objectiveHistory()}).</li>
 *   <li>Store: codebooks and scales are rounded to fp16 (what the format holds), the scales refit to
 *       the rounded codebooks first.</li>
 * </ol>
 * A width that is not a multiple of 8 is padded with inputs whose H rows are zero: they cost nothing
 * and their decoded weights are dropped.
 *
 * <p>Cost per round, with G = cols/8: the beam search up to rows G M beam (8 K + 8 cols) (t is
 * updated only on the columns still ahead); the codebook system rows (G M)^2 32 to build (its lower
 * triangle) and (M K 8)^3 / 3 to factor; the objective and scale steps one rows x cols x cols GEMM
 * each. The build, which dominates on wide layers, runs one strip of the system (one codeword's 8
 * rows) per task and takes its rows group by group, so the strip and the group's 8 rows of H stay
 * in cache (docs/real-size-compression.md, "AQLM at 7B", has the measured cost). The K-wide scoring
 * and the M K 8 solve are why 1x16 (K = 65536, 524288 unknowns) is refused here: the quantizer
 * supports up to 2^12 codewords per codebook. Search and solve run in double.
 */
public final class Aqlm implements Quantizer {

    /** Inputs per group. */
    public static final int GROUP = AdditiveQuant.DIM;
    /** Largest codebook the quantizer builds (codeword scoring and one codebook's solve grow with it). */
    public static final int MAX_CODEBOOK_BITS = 12;

    /**
     * AQLM settings.
     *
     * @param numCodebooks     M >= 1
     * @param codebookBits     B in 1..{@link #MAX_CODEBOOK_BITS}: K = 2^B codewords per codebook; M B must be a
     *                         multiple of 8 (whole bits per weight)
     * @param beamWidth        hypotheses kept per row in the code search (1: greedy coordinate descent)
     * @param iterations       rounds of code search + codebook/scale update after the initialisation
     * @param kmeansIterations Lloyd iterations per codebook of the residual k-means initialisation
     * @param relTolerance     stop when a round lowers the objective by less than this fraction
     * @param jointLimit       solve all codebooks in one system when M K 8 is at most this, else one
     *                         codebook at a time (a block coordinate step: still exact per block)
     * @param seed             k-means seeding
     */
    public record Options(int numCodebooks, int codebookBits, int beamWidth, int iterations, int kmeansIterations,
                          double relTolerance, int jointLimit, long seed) {
        public Options {
            if (numCodebooks < 1 || numCodebooks > 16) throw new IllegalArgumentException("codebooks must be 1..16, got " + numCodebooks);
            if (codebookBits < 1 || codebookBits > MAX_CODEBOOK_BITS)
                throw new IllegalArgumentException("codebook bits must be 1.." + MAX_CODEBOOK_BITS + ", got " + codebookBits);
            if (numCodebooks * codebookBits % GROUP != 0)
                throw new IllegalArgumentException(numCodebooks + "x" + codebookBits + " codes are not a whole number of bits per weight"
                        + " (codebooks x codebook bits must be a multiple of 8)");
            if (beamWidth < 1 || beamWidth > 64) throw new IllegalArgumentException("beam width must be 1..64, got " + beamWidth);
            if (iterations < 0 || kmeansIterations < 0) throw new IllegalArgumentException("iteration counts must be >= 0");
            if (!(relTolerance >= 0)) throw new IllegalArgumentException("tolerance must be >= 0, got " + relTolerance);
            if (jointLimit < 0) throw new IllegalArgumentException("joint limit must be >= 0, got " + jointLimit);
        }

        /**
         * The defaults at a width: M = bits codebooks of 8 bits (2 bits: 2x8, AQLM's CPU-friendly
         * form), beam 4, 6 rounds, 10 k-means iterations, tolerance 1e-3, joint solve up to 4096 unknowns.
         */
        public static Options defaults(int bits) {
            return new Options(bits, 8, 4, 6, 10, 1e-3, 4096, 0);
        }

        /** Nominal bits per weight of the codes: M B / 8. */
        public int bits() { return numCodebooks * codebookBits / GROUP; }

        public Options withCodebooks(int m, int b) { return new Options(m, b, beamWidth, iterations, kmeansIterations, relTolerance, jointLimit, seed); }
        public Options withBeamWidth(int w) { return new Options(numCodebooks, codebookBits, w, iterations, kmeansIterations, relTolerance, jointLimit, seed); }
        public Options withIterations(int n) { return new Options(numCodebooks, codebookBits, beamWidth, n, kmeansIterations, relTolerance, jointLimit, seed); }
        public Options withKmeansIterations(int n) { return new Options(numCodebooks, codebookBits, beamWidth, iterations, n, relTolerance, jointLimit, seed); }
        public Options withRelTolerance(double t) { return new Options(numCodebooks, codebookBits, beamWidth, iterations, kmeansIterations, t, jointLimit, seed); }
        public Options withJointLimit(int n) { return new Options(numCodebooks, codebookBits, beamWidth, iterations, kmeansIterations, relTolerance, n, seed); }
        public Options withSeed(long s) { return new Options(numCodebooks, codebookBits, beamWidth, iterations, kmeansIterations, relTolerance, jointLimit, s); }
    }

    /** Ridge of the codebook solve, relative to the mean diagonal of the normal equations. */
    static final double RIDGE = 1e-9;
    /** Rows per task of the parallel code search. */
    private static final int ROW_TILE = 8;

    private final Options opt;

    public Aqlm(Options options) {
        this.opt = options;
    }

    public Options options() { return opt; }

    @Override
    public String method() { return "aqlm"; }

    @Override
    public int bits() { return opt.bits(); }

    @Override
    public long storageBits(int rows, int cols) {
        return AqlmWeight.storageBits(rows, cols, opt.numCodebooks(), opt.codebookBits());
    }

    /**
     * The working state of one layer: padded W and H, codes, codebooks and scales in double.
     * Package-private so that tests can drive single steps.
     */
    static final class State {
        final int rows, cols, groups, cp, m, k;
        final double[] w;      // [rows, cp], zero-padded
        final double[] h;      // [cp, cp], zero-padded
        final int[] codes;     // [rows, groups, m]
        final double[] cb;     // [m, k, 8]
        final double[] scales; // [rows]
        double[] gram = new double[0]; // the codebook system, reused between solves (128 MiB for 2x8)

        State(float[] wf, int rows, int cols, double[] hIn, int m, int k) {
            this.rows = rows;
            this.cols = cols;
            this.groups = (cols + GROUP - 1) / GROUP;
            this.cp = groups * GROUP;
            this.m = m;
            this.k = k;
            w = new double[rows * cp];
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) w[r * cp + c] = wf[r * cols + c];
            h = new double[cp * cp];
            for (int i = 0; i < cols; i++) System.arraycopy(hIn, i * cols, h, i * cp, cols);
            codes = new int[rows * groups * m];
            cb = new double[m * k * GROUP];
            scales = new double[rows];
        }

        /** Ŵ [rows, cp]. */
        double[] decode() {
            double[] out = new double[rows * cp];
            AdditiveQuant.decode(codes, rows, groups, m, cb, k, scales, out);
            return out;
        }
    }

    @Override
    public AqlmWeight quantize(float[] w, int rows, int cols, double[] h) {
        return quantize(w, rows, cols, h, null, -1);
    }

    /**
     * Quantizes with the codebooks fixed to those of another layer (codebooks shared across layers):
     * only codes and scales are fitted, the codes initialised by a greedy residual assignment to
     * the given codewords. The result records codebooksLayer as where its codebooks are stored.
     *
     * @param codebooks      [M, 2^B, 8] fp16 values (an {@link AqlmWeight#codebooks} of the same configuration)
     * @param codebooksLayer the decoder layer whose same-named linear stores the codebooks
     */
    public AqlmWeight quantizeWithCodebooks(float[] w, int rows, int cols, double[] h, float[] codebooks, int codebooksLayer) {
        if (codebooks.length != opt.numCodebooks() * (1 << opt.codebookBits()) * GROUP)
            throw new IllegalArgumentException("shared codebooks have " + codebooks.length + " values, expected "
                    + opt.numCodebooks() * (1 << opt.codebookBits()) * GROUP + " for " + opt.numCodebooks() + "x" + opt.codebookBits());
        if (codebooksLayer < 0) throw new IllegalArgumentException("the codebooks' layer must be >= 0, got " + codebooksLayer);
        return quantize(w, rows, cols, h, codebooks, codebooksLayer);
    }

    /** fixedCodebooks null: codebooks fitted here; else only codes and scales are. */
    private AqlmWeight quantize(float[] w, int rows, int cols, double[] h, float[] fixedCodebooks, int codebooksLayer) {
        Quantizer.checkShapes(w, rows, cols, h);
        boolean fit = fixedCodebooks == null;
        long t0 = System.nanoTime();
        State st = new State(w, rows, cols, h, opt.numCodebooks(), 1 << opt.codebookBits());
        double ref = objective(st, new double[st.rows * st.cp], null); // tr(W H W^T): Ŵ = 0
        double[] history = new double[3 + 2 * opt.iterations()];
        int hn = 0;

        initScales(st);
        if (fit) {
            residualKmeans(st, opt.kmeansIterations(), opt.seed());
        } else {
            for (int i = 0; i < fixedCodebooks.length; i++) st.cb[i] = fixedCodebooks[i];
            residualAssign(st);
        }
        history[hn++] = objective(st, st.decode(), null);
        long t1 = System.nanoTime();
        double ridge = fit ? updateCodebooks(st, opt.jointLimit()) : 0;
        updateScales(st);
        long t2 = System.nanoTime();
        double[] t = new double[st.rows * st.cp];
        double obj = objective(st, st.decode(), t);
        history[hn++] = obj;
        double searchNanos = 0, solveNanos = t2 - t1;
        int rounds = 0;
        long changed = 0;
        for (int it = 0; it < opt.iterations(); it++) {
            long s0 = System.nanoTime();
            changed = beamSearch(st, t, opt.beamWidth());
            long s1 = System.nanoTime();
            history[hn++] = objective(st, st.decode(), null);
            if (fit) ridge = Math.max(ridge, updateCodebooks(st, opt.jointLimit()));
            updateScales(st);
            long s2 = System.nanoTime();
            searchNanos += s1 - s0;
            solveNanos += s2 - s1;
            double next = objective(st, st.decode(), t);
            history[hn++] = next;
            rounds++;
            boolean small = obj - next <= opt.relTolerance() * obj;
            obj = next;
            if (changed == 0 || small) break;
        }

        // Store: fp16 codebooks, scales refit to them, then fp16 scales.
        float[] cbf = new float[st.cb.length];
        for (int i = 0; i < cbf.length; i++) {
            cbf[i] = Fp16.toFloat(Fp16.fromFloat((float) st.cb[i]));
            st.cb[i] = cbf[i];
        }
        updateScales(st);
        float[] sf = new float[rows];
        for (int r = 0; r < rows; r++) {
            sf[r] = Fp16.toFloat(Fp16.fromFloat((float) st.scales[r]));
            st.scales[r] = sf[r];
        }
        for (float v : cbf) if (!Float.isFinite(v)) throw new IllegalStateException("AQLM: a codebook entry overflows fp16 (" + v + ")");
        for (float v : sf) if (!Float.isFinite(v)) throw new IllegalStateException("AQLM: a scale overflows fp16 (" + v + ")");
        double stored = objective(st, st.decode(), null);
        long t3 = System.nanoTime();

        Map<String, Number> stats = new LinkedHashMap<>();
        stats.put("num_codebooks", opt.numCodebooks());
        stats.put("codebook_bits", opt.codebookBits());
        stats.put("beam_width", opt.beamWidth());
        stats.put("rounds", rounds);
        stats.put("codes_changed_last_round", changed);
        stats.put("objective_kmeans", ref == 0 ? 0 : history[0] / ref);
        stats.put("objective_init", ref == 0 ? 0 : history[1] / ref);
        stats.put("objective_last", ref == 0 ? 0 : obj / ref);
        stats.put("objective_stored", ref == 0 ? 0 : stored / ref);
        stats.put("codebook_ridge", ridge);
        stats.put("kmeans_seconds", (t1 - t0) / 1e9);
        stats.put("search_seconds", searchNanos / 1e9);
        stats.put("solve_seconds", solveNanos / 1e9);
        stats.put("seconds", (t3 - t0) / 1e9);
        if (!fit) stats.put("codebooks_layer", codebooksLayer);
        return new AqlmWeight(rows, cols, opt.numCodebooks(), opt.codebookBits(), st.codes, cbf, sf,
                Arrays.copyOf(history, hn), stats, codebooksLayer);
    }

    // ---- objective ----

    /**
     * tr(E H E^T) with E = Ŵ - W for Ŵ = wq [rows, cp]; when t is not null it receives E H.
     * wq is overwritten with E.
     */
    static double objective(State st, double[] wq, double[] t) {
        int n = st.rows * st.cp;
        Blas1.axpy(n, -1, st.w, 0, wq, 0);
        double[] eh = t != null ? t : new double[n];
        Gemm.dgemm(false, false, st.rows, st.cp, st.cp, 1, wq, 0, st.cp, st.h, 0, st.cp, 0, eh, 0, st.cp);
        return Blas1.dot(n, wq, 0, eh, 0);
    }

    // ---- initialisation ----

    /** s_r = |w_r| (1 for a zero row). */
    static void initScales(State st) {
        for (int r = 0; r < st.rows; r++) {
            double n = Math.sqrt(Blas1.dot(st.cp, st.w, r * st.cp, st.w, r * st.cp));
            st.scales[r] = n > 0 ? n : 1;
        }
    }

    /** Residual k-means of the scaled-down row groups: codebook m fits what codebooks before it left. */
    static void residualKmeans(State st, int iterations, long seed) {
        int points = st.rows * st.groups;
        double[] x = new double[points * GROUP];
        for (int r = 0; r < st.rows; r++) {
            double inv = 1 / st.scales[r];
            for (int c = 0; c < st.cp; c++) x[r * st.cp + c] = st.w[r * st.cp + c] * inv;
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] assign = new int[points];
        for (int b = 0; b < st.m; b++) {
            int off = b * st.k * GROUP;
            kmeans(x, points, st.cb, off, st.k, iterations, rnd, assign);
            for (int p = 0; p < points; p++) st.codes[p * st.m + b] = assign[p];
            AdditiveQuant.subtractAssigned(x, points, assign, st.cb, off);
        }
    }

    /** Codes for fixed codebooks: codebook m takes the codeword nearest to what codebooks 0..m-1 left of each scaled-down group. */
    static void residualAssign(State st) {
        int points = st.rows * st.groups;
        double[] x = new double[points * GROUP];
        for (int r = 0; r < st.rows; r++) {
            double inv = 1 / st.scales[r];
            for (int c = 0; c < st.cp; c++) x[r * st.cp + c] = st.w[r * st.cp + c] * inv;
        }
        int[] assign = new int[points];
        double[] norms = new double[st.k];
        for (int b = 0; b < st.m; b++) {
            int off = b * st.k * GROUP;
            for (int j = 0; j < st.k; j++) norms[j] = Blas1.dot(GROUP, st.cb, off + j * GROUP, st.cb, off + j * GROUP);
            Arrays.fill(assign, -1);
            AdditiveQuant.assignNearest(x, 0, points, st.cb, off, st.k, norms, assign);
            for (int p = 0; p < points; p++) st.codes[p * st.m + b] = assign[p];
            AdditiveQuant.subtractAssigned(x, points, assign, st.cb, off);
        }
    }

    /** Lloyd's k-means of n 8-dim points into k centroids at cb[off]; seeds from random points; assign out. */
    private static void kmeans(double[] x, int n, double[] cb, int off, int k, int iterations, SplittableRandom rnd, int[] assign) {
        // Seeds: distinct random points (all of them, then repeats, when there are fewer than k).
        int[] order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (int j = 0; j < k; j++) System.arraycopy(x, order[j % n] * GROUP, cb, off + j * GROUP, GROUP);
        double[] norms = new double[k];
        Arrays.fill(assign, 0, n, -1);
        double[] sums = new double[k * GROUP];
        int[] counts = new int[k];
        for (int it = 0; it <= iterations; it++) {
            for (int j = 0; j < k; j++) norms[j] = Blas1.dot(GROUP, cb, off + j * GROUP, cb, off + j * GROUP);
            int tasks = Math.min(n, 4 * Parallel.threads());
            int[] changedBy = new int[tasks];
            Parallel.forRange(tasks, task -> {
                int from = (int) ((long) n * task / tasks), to = (int) ((long) n * (task + 1) / tasks);
                changedBy[task] = AdditiveQuant.assignNearest(x, from, to, cb, off, k, norms, assign);
            });
            int changed = 0;
            for (int c : changedBy) changed += c;
            if (it == iterations || changed == 0) break;
            Arrays.fill(sums, 0);
            Arrays.fill(counts, 0);
            AdditiveQuant.clusterSums(x, n, assign, sums, counts);
            for (int j = 0; j < k; j++) {
                if (counts[j] > 0) {
                    for (int i = 0; i < GROUP; i++) cb[off + j * GROUP + i] = sums[j * GROUP + i] / counts[j];
                } else { // an empty cluster restarts at a random point
                    System.arraycopy(x, rnd.nextInt(n) * GROUP, cb, off + j * GROUP, GROUP);
                }
            }
        }
    }

    // ---- codebook and scale updates ----

    /**
     * Sets the codebooks to the least-squares optimum for the current codes and scales: jointly
     * when M K 8 <= jointLimit, else codebook by codebook. Returns the largest relative ridge used.
     */
    static double updateCodebooks(State st, int jointLimit) {
        if ((long) st.m * st.k * GROUP <= jointLimit) return solveCodebooks(st, 0, st.m);
        double ridge = 0;
        for (int b = 0; b < st.m; b++) ridge = Math.max(ridge, solveCodebooks(st, b, b + 1));
        return ridge;
    }

    /**
     * Codebooks [m0, m1) by least squares with the others fixed: the rows' targets are W minus the
     * fixed codebooks' part, A = sum_r s_r^2 P_r^T H P_r, b = sum_r s_r P_r^T H target_r, plus a ridge
     * lambda (|c - c_old|^2) that only matters for codewords no row uses. The ridge starts at
     * {@link #RIDGE} times the mean diagonal and grows by 100x while the factorization fails.
     *
     * @return the relative ridge used
     */
    static double solveCodebooks(State st, int m0, int m1) {
        int nb = m1 - m0, units = nb * st.k, n = units * GROUP, cp = st.cp;
        double[] target = st.w.clone();
        if (nb < st.m) { // subtract the fixed codebooks' contribution
            double[] fixed = st.cb.clone();
            Arrays.fill(fixed, m0 * st.k * GROUP, m1 * st.k * GROUP, 0);
            double[] part = new double[st.rows * cp];
            AdditiveQuant.decode(st.codes, st.rows, st.groups, st.m, fixed, st.k, st.scales, part);
            Blas1.axpy(part.length, -1, part, 0, target, 0);
        }
        double[] y = new double[st.rows * cp];
        Gemm.dgemm(false, false, st.rows, cp, cp, 1, target, 0, cp, st.h, 0, cp, 0, y, 0, cp);
        int per = st.groups * nb;
        if ((long) st.rows * per > Integer.MAX_VALUE) throw new IllegalArgumentException("AQLM: too many codes in one linear");
        int[] unk = new int[st.rows * per], grp = new int[per]; // row r's entries at r * per; groups the same for all rows
        double[] b0 = new double[n];
        for (int r = 0; r < st.rows; r++) {
            entries(st, r, m0, m1, unk, r * per, grp);
            AdditiveQuant.addRhsBlocks(b0, unk, r * per, grp, per, y, r * cp, st.scales[r]);
        }
        // For each unknown block u, the (row, entry) pairs that select it, by group and then row: one
        // task builds strip u of A, and the entries of one group in a row read the same strip of H
        // (8 x cp doubles, 704 KB at cp = 11008), which then stays in cache instead of streaming
        // from memory once per entry.
        int[] start = new int[units + 1];
        for (int v : unk) start[v + 1]++;
        for (int u = 0; u < units; u++) start[u + 1] += start[u];
        int[] pairs = new int[unk.length], fill = Arrays.copyOf(start, units);
        for (int g = 0; g < st.groups; g++) {
            for (int r = 0; r < st.rows; r++) {
                for (int e = r * per + g * nb, end = e + nb; e < end; e++) pairs[fill[unk[e]]++] = e;
            }
        }
        double[] old = Arrays.copyOfRange(st.cb, m0 * st.k * GROUP, m1 * st.k * GROUP);
        // Rows one group longer than n: rows a multiple of 4 KiB apart would share L1 sets in the strip kernel.
        int lda = n + GROUP;
        if (st.gram.length < (long) n * lda) st.gram = new double[n * lda];
        double[] a = st.gram;
        for (double rel = RIDGE; ; rel *= 100) {
            Arrays.fill(a, 0, n * lda, 0);
            Parallel.forRange(units, u -> {
                for (int p = start[u]; p < start[u + 1]; p++) {
                    int r = pairs[p] / per, j = pairs[p] - r * per;
                    double s = st.scales[r];
                    AdditiveQuant.addGramStrip(a, lda, u, grp[j], unk, r * per, grp, per, st.h, cp, s * s);
                }
            });
            double mean = 0;
            for (int i = 0; i < n; i++) mean += a[i * lda + i];
            mean /= n;
            double lambda = rel * (mean > 0 ? mean : 1);
            double[] b = b0.clone();
            for (int i = 0; i < n; i++) {
                a[i * lda + i] += lambda;
                b[i] += lambda * old[i];
            }
            if (Cholesky.factorLower(a, 0, lda, n) == Cholesky.OK) {
                Triangular.solveLeft(false, false, n, 1, a, 0, lda, b, 0, 1);
                Triangular.solveLeft(false, true, n, 1, a, 0, lda, b, 0, 1);
                boolean finite = true;
                for (double v : b) finite &= Double.isFinite(v);
                if (finite) {
                    System.arraycopy(b, 0, st.cb, m0 * st.k * GROUP, n);
                    return rel;
                }
            }
            if (rel > 1) throw new IllegalStateException("AQLM: the codebook system stays singular even with ridge " + rel);
        }
    }

    /** Row r's entries for codebooks [m0, m1): the unknown block (codeword) of each, from unk[off], and its group. */
    private static void entries(State st, int r, int m0, int m1, int[] unk, int off, int[] grp) {
        int j = 0;
        for (int g = 0; g < st.groups; g++) {
            for (int b = m0; b < m1; b++) {
                unk[off + j] = (b - m0) * st.k + st.codes[(r * st.groups + g) * st.m + b];
                grp[j++] = g;
            }
        }
    }

    /** Per-row least-squares scales for the current codes and codebooks (kept where the row decodes to 0 under H). */
    static void updateScales(State st) {
        int cp = st.cp;
        double[] q = new double[st.rows * cp];
        AdditiveQuant.decode(st.codes, st.rows, st.groups, st.m, st.cb, st.k, null, q);
        double[] qh = new double[q.length];
        Gemm.dgemm(false, false, st.rows, cp, cp, 1, q, 0, cp, st.h, 0, cp, 0, qh, 0, cp);
        for (int r = 0; r < st.rows; r++) {
            double den = Blas1.dot(cp, q, r * cp, qh, r * cp);
            double num = Blas1.dot(cp, st.w, r * cp, qh, r * cp);
            if (den > 0 && Double.isFinite(num / den)) st.scales[r] = num / den;
        }
    }

    // ---- code search ----

    /**
     * One beam-search sweep over every row's codes (codebooks and scales fixed). t holds
     * (W - Ŵ) H [rows, cp] for the current codes on entry; on return it is stale. Returns the
     * number of codes changed.
     */
    static long beamSearch(State st, double[] t, int beamWidth) {
        int gm = st.groups * st.m;
        double[] norms = new double[gm * st.k]; // C_m[k] H_gg C_m[k], per (g, m)
        for (int g = 0; g < st.groups; g++) {
            for (int b = 0; b < st.m; b++) {
                AdditiveQuant.quadraticForms(st.cb, b * st.k * GROUP, st.k, st.h, g * GROUP * st.cp + g * GROUP, st.cp,
                        norms, (g * st.m + b) * st.k);
            }
        }
        double[] e = st.decode();
        Blas1.axpy(e.length, -1, st.w, 0, e, 0); // E = Ŵ - W
        double[] rowLoss = new double[st.rows];
        for (int r = 0; r < st.rows; r++) rowLoss[r] = Blas1.dot(st.cp, e, r * st.cp, t, r * st.cp);
        int tiles = (st.rows + ROW_TILE - 1) / ROW_TILE;
        long[] changed = new long[tiles];
        Parallel.forRange(tiles, tile -> {
            RowSearch rs = new RowSearch(st, norms, beamWidth);
            for (int r = tile * ROW_TILE; r < Math.min(st.rows, (tile + 1) * ROW_TILE); r++) changed[tile] += rs.run(r, t, rowLoss[r]);
        });
        long total = 0;
        for (long c : changed) total += c;
        return total;
    }

    /**
     * The beam search of one row at a time, with its scratch (one per task). A hypothesis is a code
     * vector and its t; a step's survivors take over their parents' arrays (the last child of a
     * parent takes them, its other children copy them), so most steps copy nothing.
     */
    static final class RowSearch {
        private final State st;
        private final double[] norms;
        private final int width, gm, cp, k;
        private final int[][] codes, nextCodes;      // the beam's arrays, this step and the next
        private final double[][] t, nextT;
        private final int[][] allCodes, freeCodes;  // 2 x width arrays in all; those no hypothesis holds
        private final double[][] allT, freeT;
        private final int[] kids;
        private final boolean[] hadKids;
        private final double[] loss, nextLoss;
        private final long[] hash, nextHash;
        private final double[] scores, a;
        // candidates of one step
        private final double[] cLoss;
        private final int[] cParent, cCode;
        private final long[] cHash;

        RowSearch(State st, double[] norms, int width) {
            this.st = st;
            this.norms = norms;
            this.width = width;
            this.gm = st.groups * st.m;
            this.cp = st.cp;
            this.k = st.k;
            codes = new int[width][];
            nextCodes = new int[width][];
            t = new double[width][];
            nextT = new double[width][];
            allCodes = new int[2 * width][gm];
            freeCodes = new int[2 * width][];
            allT = new double[2 * width][cp];
            freeT = new double[2 * width][];
            kids = new int[width];
            hadKids = new boolean[width];
            loss = new double[width];
            nextLoss = new double[width];
            hash = new long[width];
            nextHash = new long[width];
            scores = new double[k];
            a = new double[GROUP];
            cLoss = new double[width];
            cParent = new int[width];
            cCode = new int[width];
            cHash = new long[width];
        }

        /** Searches row r (t's row r is its (ŵ - w) H, rowLoss its loss); writes the best codes; returns codes changed. */
        int run(int r, double[] tAll, double rowLoss) {
            int[][] cd = codes, ncd = nextCodes;
            double[][] tt = t, ntt = nextT;
            double[] ls = loss, nls = nextLoss;
            long[] hs = hash, nhs = nextHash;
            int base = r * gm;
            cd[0] = allCodes[0];
            tt[0] = allT[0];
            int free = 0;
            for (int i = 1; i < 2 * width; i++, free++) {
                freeCodes[free] = allCodes[i];
                freeT[free] = allT[i];
            }
            System.arraycopy(st.codes, base, cd[0], 0, gm);
            System.arraycopy(tAll, r * cp, tt[0], 0, cp);
            ls[0] = rowLoss;
            hs[0] = 0; // hashes are relative to the starting code vector
            int count = 1;
            double s = st.scales[r], s2 = s * s;
            for (int g = 0; g < st.groups; g++) {
                int hg = g * GROUP * cp + g * GROUP;
                for (int b = 0; b < st.m; b++) {
                    int j = g * st.m + b, cbOff = b * k * GROUP, nOff = j * k;
                    int chosen = 0;
                    for (int h = 0; h < count; h++) {
                        int old = cd[h][j];
                        int u = cbOff + old * GROUP;
                        // a = s^2 H_gg u - s t_g (t = E H with E = Ŵ - W)
                        AdditiveQuant.linearTerm(st.h, hg, cp, st.cb, u, s2, tt[h], g * GROUP, -s, a);
                        if (width == 1) {
                            int best = AdditiveQuant.scores(st.cb, cbOff, k, norms, nOff, s2, a, 0, scores, 0);
                            if (best != old && scores[best] < scores[old]) {
                                ls[0] += scores[best] - scores[old];
                                apply(tt[0], g, s, cbOff + best * GROUP, u);
                                cd[0][j] = best;
                            }
                            continue;
                        }
                        AdditiveQuant.scores(st.cb, cbOff, k, norms, nOff, s2, a, 0, scores, 0);
                        double so = scores[old];
                        // bar: the worst kept loss once the set is full; a candidate must beat it
                        double bar = chosen == width ? cLoss[worst(chosen)] : 0;
                        for (int c = 0; c < k; c++) {
                            double nl = ls[h] + (scores[c] - so);
                            if (chosen == width && nl >= bar) continue;
                            long nh = c == old ? hs[h] : hs[h] ^ zobrist(j, old) ^ zobrist(j, c);
                            chosen = offer(chosen, nl, h, c, nh);
                            if (chosen == width) bar = cLoss[worst(chosen)];
                        }
                    }
                    if (width == 1) continue;
                    // The chosen candidates become the next beam: all copies first, then the updates.
                    for (int h = 0; h < count; h++) kids[h] = 0;
                    for (int c = 0; c < chosen; c++) kids[cParent[c]]++;
                    for (int h = 0; h < count; h++) hadKids[h] = kids[h] > 0;
                    for (int c = 0; c < chosen; c++) {
                        int p = cParent[c];
                        if (--kids[p] == 0) {
                            ncd[c] = cd[p];
                            ntt[c] = tt[p];
                        } else {
                            ncd[c] = freeCodes[--free];
                            ntt[c] = freeT[free];
                            System.arraycopy(cd[p], 0, ncd[c], 0, gm);
                            System.arraycopy(tt[p], g * GROUP, ntt[c], g * GROUP, cp - g * GROUP);
                        }
                    }
                    for (int h = 0; h < count; h++) {
                        if (hadKids[h]) continue;
                        freeCodes[free] = cd[h];
                        freeT[free++] = tt[h];
                    }
                    for (int c = 0; c < chosen; c++) {
                        int code = cCode[c], old = ncd[c][j];
                        if (code != old) {
                            apply(ntt[c], g, s, cbOff + code * GROUP, cbOff + old * GROUP);
                            ncd[c][j] = code;
                        }
                        nls[c] = cLoss[c];
                        nhs[c] = cHash[c];
                    }
                    count = chosen;
                    int[][] sc = cd; cd = ncd; ncd = sc;
                    double[][] stt = tt; tt = ntt; ntt = stt;
                    double[] sl = ls; ls = nls; nls = sl;
                    long[] sh = hs; hs = nhs; nhs = sh;
                }
            }
            int best = 0;
            for (int h = 1; h < count; h++) if (ls[h] < ls[best]) best = h;
            int changed = 0;
            for (int j = 0; j < gm; j++) if (cd[best][j] != st.codes[base + j]) changed++;
            System.arraycopy(cd[best], 0, st.codes, base, gm);
            return changed;
        }

        /**
         * t += s (v - u) H[8g .. 8g + 8, 8g ..]: the effect on E H of replacing codeword u by v in
         * group g, on the columns the sweep still reads (groups g and after; the columns of groups
         * already passed go stale, as the whole of t does when the sweep ends).
         */
        private void apply(double[] tv, int g, double s, int v, int u) {
            int c0 = g * GROUP;
            for (int i = 0; i < GROUP; i++) {
                double d = s * (st.cb[v + i] - st.cb[u + i]);
                if (d != 0) Blas1.axpy(cp - c0, d, st.h, (c0 + i) * cp + c0, tv, c0);
            }
        }

        private int worst(int n) {
            int w = 0;
            for (int i = 1; i < n; i++) if (cLoss[i] > cLoss[w]) w = i;
            return w;
        }

        /** Offers a candidate to the best-width set (distinct code vectors by hash); returns the new size. */
        private int offer(int n, double nl, int parent, int code, long h) {
            for (int i = 0; i < n; i++) {
                if (cHash[i] == h) {
                    if (nl < cLoss[i]) set(i, nl, parent, code, h);
                    return n;
                }
            }
            if (n < width) {
                set(n, nl, parent, code, h);
                return n + 1;
            }
            int w = worst(n);
            if (nl < cLoss[w]) set(w, nl, parent, code, h);
            return n;
        }

        private void set(int i, double nl, int parent, int code, long h) {
            cLoss[i] = nl;
            cParent[i] = parent;
            cCode[i] = code;
            cHash[i] = h;
        }
    }

    /** A random 64-bit key for (position, code): XORs of them hash a code vector (Zobrist hashing). */
    static long zobrist(int position, int code) {
        long z = ((long) position << 20 | code) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
