package casp.quant.gptq;

import casp.kernel.Cholesky;
import casp.kernel.Gemm;
import casp.kernel.Parallel;
import casp.kernel.QuantOps;
import casp.quant.CompressedLayer;
import casp.quant.Quantizer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * GPTQ (Frantar et al. 2022), as ALGORITHMS.md section 6 and IST-DASLab's gptq.py
 * {@code fasterquant}: quantize the columns of W one at a time, and after each column spread its
 * error over the columns not yet quantized, weighted by the inverse Hessian, so that
 * tr(dW H dW^T) stays small.
 *
 * <ol>
 *   <li>Dead inputs (H[i,i] == 0): H[i,i] = 1, W[:, i] = 0.</li>
 *   <li>Per-channel or static groups: scales/zeros from W up front, groups in original column order.</li>
 *   <li>act-order: columns in order of descending diag(H) (stable); undone at the end (g_idx says
 *       each column's group).</li>
 *   <li>Damping H[i,i] += percDamp * mean(diag H); if the Cholesky factorization fails, the damping
 *       is doubled (from at least 0.001) and retried; the damping used is in {@link CompressedLayer#stats()}.</li>
 *   <li>U = upper Cholesky factor of H^-1 (U^T U = H^-1).</li>
 *   <li>Blocks of {@code blockSize} columns: each column is quantized, its error e = (w - q) / U[i,i]
 *       updates the rest of the block at once (rank one), and after the block the collected
 *       errors E update all later columns: W[:, i2:] -= E U[i1:i2, i2:], one GEMM (most of the time).</li>
 *   <li>Non-static groups: scale/zero from the current, error-updated weights of the group when
 *       its first column comes up. Blocks are cut short so that a group starting inside a block
 *       also ends inside it: the group's columns are then all up to date when its parameters are
 *       chosen (gptq.py reads stale values there when the group size does not divide 128).</li>
 * </ol>
 *
 * <p>Implementation: W is held transposed ([cols, rows], a column of W contiguous), so every
 * column step is a vector loop over rows. Rows are independent given U, so each block's column
 * loop runs in parallel over tiles of rows; the GEMM runs on all rows. U and W are float32; the
 * factorization ({@link Cholesky#choleskyInverseUpper}) is float64.
 */
public final class Gptq implements Quantizer {

    /**
     * GPTQ settings.
     *
     * @param bits         2, 3, 4 or 8
     * @param groupSize    columns per group (> 0), or -1 for one group per output channel
     * @param actOrder     process columns by descending diag(H)
     * @param staticGroups with groups: compute all scales/zeros up front from W in original column order
     *                     (AutoGPTQ static_groups; with act-order this keeps g_idx monotone)
     * @param symmetric    symmetric grid (zero = 2^(bits-1)) instead of asymmetric
     * @param percDamp     damping as a fraction of mean(diag H), >= 0 (0.01 in GPTQ)
     * @param mseClip      search a shrunk range per group (see {@link QuantGrid})
     * @param blockSize    columns per lazy-update block (128 in GPTQ)
     */
    public record Options(int bits, int groupSize, boolean actOrder, boolean staticGroups, boolean symmetric,
                          double percDamp, boolean mseClip, int blockSize) {
        public Options {
            if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
                throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, got " + bits);
            }
            if (groupSize == 0 || groupSize < -1) {
                throw new IllegalArgumentException("group size must be positive or -1 (per channel), got " + groupSize);
            }
            if (!(percDamp >= 0) || Double.isInfinite(percDamp)) {
                throw new IllegalArgumentException("damping must be a finite number >= 0, got " + percDamp);
            }
            if (blockSize < 1) throw new IllegalArgumentException("block size must be >= 1, got " + blockSize);
        }

        /** GPTQ as usually run: group 128, act-order with static groups, asymmetric, 1% damping, blocks of 128. */
        public static Options defaults(int bits) {
            return new Options(bits, 128, true, true, false, 0.01, false, 128);
        }

        public Options withGroupSize(int g) { return new Options(bits, g, actOrder, staticGroups, symmetric, percDamp, mseClip, blockSize); }
        public Options withActOrder(boolean a) { return new Options(bits, groupSize, a, staticGroups, symmetric, percDamp, mseClip, blockSize); }
        public Options withStaticGroups(boolean s) { return new Options(bits, groupSize, actOrder, s, symmetric, percDamp, mseClip, blockSize); }
        public Options withSymmetric(boolean s) { return new Options(bits, groupSize, actOrder, staticGroups, s, percDamp, mseClip, blockSize); }
        public Options withPercDamp(double d) { return new Options(bits, groupSize, actOrder, staticGroups, symmetric, d, mseClip, blockSize); }
        public Options withMseClip(boolean m) { return new Options(bits, groupSize, actOrder, staticGroups, symmetric, percDamp, m, blockSize); }
        public Options withBlockSize(int b) { return new Options(bits, groupSize, actOrder, staticGroups, symmetric, percDamp, mseClip, b); }
    }

    /** Rows per tile of the parallel column loop: a block of 128 columns x 128 rows stays in L2. */
    private static final int ROW_TILE = 128;
    /** Damping attempts before giving up (the last one adds over 10^8 times the mean diagonal). */
    private static final int MAX_DAMP_ATTEMPTS = 40;

    private final Options opt;
    private final QuantGrid grid;

    public Gptq(Options options) {
        this.opt = options;
        this.grid = new QuantGrid(options.bits(), options.symmetric(), options.mseClip());
    }

    public Options options() {
        return opt;
    }

    @Override
    public String method() {
        return "gptq";
    }

    @Override
    public int bits() {
        return opt.bits();
    }

    @Override
    public long storageBits(int rows, int cols) {
        return GptqFormat.storageBits(rows, cols, opt.bits(), opt.groupSize());
    }

    /**
     * Quantizes W [rows, cols] with the Hessian H [cols, cols] (both row-major, both left untouched).
     * stats(): percdamp (the damping used), damp_attempts, dead_inputs, factor_seconds, loop_seconds.
     */
    @Override
    public QuantizedWeight quantize(float[] w, int rows, int cols, double[] h) {
        Quantizer.checkShapes(w, rows, cols, h);
        long t0 = System.nanoTime();
        final int gs = opt.groupSize();
        final boolean staticParams = gs < 0 || opt.staticGroups();
        final int groups = QuantizedWeight.groupCount(cols, gs);

        // 1. Dead inputs (H is not copied here: each factorization attempt below builds its own
        // damped, permuted copy). W is copied transposed to [cols, rows]: a column is contiguous.
        float[] wt = QuantOps.transpose(w, rows, cols);
        double[] diag = new double[cols];
        int dead = 0;
        for (int i = 0; i < cols; i++) {
            diag[i] = h[i * cols + i];
            if (diag[i] == 0) {
                diag[i] = 1;
                java.util.Arrays.fill(wt, i * rows, (i + 1) * rows, 0f);
                dead++;
            }
        }

        // 2. Up-front scales/zeros (per channel, or static groups) from W in original column order.
        float[] scale = new float[groups * rows], zero = new float[groups * rows];
        if (staticParams) {
            for (int g = 0; g < groups; g++) {
                int c0 = gs < 0 ? 0 : g * gs, cn = gs < 0 ? cols : Math.min(gs, cols - c0);
                grid.findParams(wt, c0 * rows, rows, rows, cn, scale, zero, g * rows);
            }
        }

        // 3. act-order permutation of W's columns (H is permuted as it is copied below).
        int[] perm = opt.actOrder() ? descendingOrder(diag) : identity(cols);
        if (opt.actOrder()) wt = permuteRows(wt, perm, rows);

        // 4-5. Damping (raised until the factorization succeeds) and U with U^T U = H^-1.
        double meanDiag = 0;
        for (double d : diag) meanDiag += Math.abs(d);
        meanDiag /= cols;
        double damp = opt.percDamp();
        double[] hd = new double[cols * cols];
        float[] u = null;
        int attempts = 0;
        while (u == null) {
            if (++attempts > MAX_DAMP_ATTEMPTS) {
                throw new IllegalStateException("GPTQ: Cholesky factorization of H failed even with damping "
                        + damp + " x mean(diag H); H is not a usable Hessian");
            }
            if (attempts > 1) damp = Math.max(2 * damp, 1e-3);
            for (int i = 0; i < cols; i++) { // hd = P^T H P, dead inputs fixed, damped
                int src = perm[i] * cols, dst = i * cols;
                for (int j = 0; j < cols; j++) hd[dst + j] = h[src + perm[j]];
                hd[dst + i] = diag[perm[i]] + damp * meanDiag;
            }
            u = inverseFactor(hd, cols);
        }
        long t1 = System.nanoTime();

        // 6. The column loop, in blocks with lazy updates.
        final float[] W = wt, U = u;
        final byte[] codesT = new byte[cols * rows];
        final int[] groupAt = new int[cols]; // group of the column at each (permuted) position
        for (int i = 0; i < cols; i++) groupAt[i] = gs < 0 ? 0 : staticParams ? perm[i] / gs : i / gs;
        final float maxq = grid.maxq;
        final int tiles = (rows + ROW_TILE - 1) / ROW_TILE;
        final int bs = opt.blockSize();
        float[] errors = new float[Math.min(bs, cols) * rows];
        for (int i1 = 0; i1 < cols; ) {
            final int b1 = i1, b2 = blockEnd(i1, Math.min(i1 + bs, cols), cols, staticParams ? -1 : gs);
            final float[] E = errors;
            Parallel.forRange(tiles, t -> {
                int r0 = t * ROW_TILE, n = Math.min(ROW_TILE, rows - r0);
                for (int i = b1; i < b2; i++) {
                    int g = groupAt[i];
                    if (!staticParams && i % gs == 0) {
                        grid.findParams(W, i * rows + r0, rows, n, Math.min(gs, cols - i), scale, zero, g * rows + r0);
                    }
                    int e = (i - b1) * rows + r0;
                    QuantOps.quantizeError(W, i * rows + r0, n, scale, zero, g * rows + r0, maxq,
                            U[i * cols + i], codesT, i * rows + r0, E, e);
                    QuantOps.rank1Sub(E, e, n, U, i * cols + i + 1, b2 - i - 1, W, (i + 1) * rows + r0, rows);
                }
            });
            // W[i2:, :] -= U[i1:i2, i2:]^T E (transposed form of W[:, i2:] -= E U[i1:i2, i2:])
            Gemm.sgemm(true, false, cols - b2, rows, b2 - b1, -1f, U, b1 * cols + b2, cols,
                    E, 0, rows, 1f, W, b2 * rows, rows);
            i1 = b2;
        }

        // 7. Undo the permutation: codes back to [rows, cols] in original column order.
        byte[] codes = new byte[rows * cols];
        QuantOps.scatterCodes(codesT, perm, rows, cols, codes);
        int[] gIdx = new int[cols];
        for (int i = 0; i < cols; i++) gIdx[perm[i]] = groupAt[i];
        int[] zeros = new int[zero.length];
        for (int i = 0; i < zero.length; i++) zeros[i] = (int) zero[i];
        long t2 = System.nanoTime();

        Map<String, Number> stats = new LinkedHashMap<>();
        stats.put("percdamp", damp);
        stats.put("damp_attempts", attempts);
        stats.put("dead_inputs", dead);
        stats.put("factor_seconds", (t1 - t0) / 1e9);
        stats.put("loop_seconds", (t2 - t1) / 1e9);
        return new QuantizedWeight(method(), rows, cols, opt.bits(), gs, opt.symmetric(), codes, scale, zeros, gIdx, stats);
    }

    /**
     * End of the block starting at i1 (at most end): with parameters chosen as groups start, a
     * group starting inside the block must end inside it, else the block stops before that group.
     */
    static int blockEnd(int i1, int end, int cols, int dynamicGroupSize) {
        if (dynamicGroupSize <= 0) return end;
        int lastStart = (end - 1) / dynamicGroupSize * dynamicGroupSize;
        if (lastStart > i1 && Math.min(lastStart + dynamicGroupSize, cols) > end) return lastStart;
        return end;
    }

    /** Indices by descending value; ties keep index order (act-order's column order for diag(H)). */
    static int[] descendingOrder(double[] v) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < v.length; i++) idx[i] = i;
        java.util.Arrays.sort(idx, (a, b) -> Double.compare(v[b], v[a])); // stable
        int[] perm = new int[v.length];
        for (int i = 0; i < v.length; i++) perm[i] = idx[i];
        return perm;
    }

    private static int[] identity(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }

    /** out row i = in row perm[i], rows of length len. */
    private static float[] permuteRows(float[] in, int[] perm, int len) {
        float[] out = new float[in.length];
        for (int i = 0; i < perm.length; i++) System.arraycopy(in, perm[i] * len, out, i * len, len);
        return out;
    }

    /**
     * U (float) with U^T U = hd^-1, or null when hd is not positive definite or so ill-conditioned
     * that a pivot lost more than 12 of float64's 16 digits (hd[i,i] * U[i,i]^2 > 1e12: that
     * factorization "succeeds" with U swamped by rounding, and GPTQ's errors explode). Also
     * null when U does not fit in float. hd is overwritten (its caller rebuilds it for every attempt).
     */
    private static float[] inverseFactor(double[] hd, int n) {
        double[] diag = new double[n];
        for (int i = 0; i < n; i++) diag[i] = hd[i * n + i];
        // In place: at 11008 inputs each n x n float64 copy is 969 MB.
        if (Cholesky.choleskyInverseUpperInPlace(hd, n) != Cholesky.OK) return null;
        for (int i = 0; i < n; i++) {
            double uii = hd[i * n + i];
            if (!(diag[i] * uii * uii <= 1e12)) return null;
        }
        float[] f = new float[n * n];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) hd[i];
            if (!Float.isFinite(f[i])) return null;
        }
        return f;
    }
}
