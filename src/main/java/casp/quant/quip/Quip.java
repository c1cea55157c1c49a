package casp.quant.quip;

import casp.kernel.Cholesky;
import casp.kernel.E8p;
import casp.kernel.E8pMatrix;
import casp.kernel.E8pResidual;
import casp.kernel.Gemm;
import casp.kernel.Hadamard;
import casp.kernel.Incoherence;
import casp.kernel.Parallel;
import casp.kernel.QuantOps;
import casp.kernel.Triangular;
import casp.kernel.VectorOps;
import casp.quant.ProxyError;
import casp.quant.Quantizer;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * QuIP# without fine-tuning (Tseng et al. 2024; ALGORITHMS.md section 7), 2 bits per weight, or 3
 * and 4 with a residual stage on each block's error (E8P12 + E81B / E8P12, {@link E8pResidual}):
 * <ol>
 *   <li>Incoherence: random sign vectors s_in, s_out and orthogonal Hadamard transforms,
 *       W~ = T_out S_out W S_in T_in^T, H~ = T_in S_in H S_in T_in^T. Widths without a Hadamard
 *       transform (stories260K's 172) are padded with zero inputs / zero output rows to the next
 *       length that has one ({@link Hadamard#paddedSize}; 172 -> 176 = 4 x 44, Paley): the padding's
 *       codes are stored and counted in the effective bits.</li>
 *   <li>H~ /= mean(diag H~), H~ += sigmaReg I (0.01). W~ /= scale with scale = RMS(W~) / rmsTarget.</li>
 *   <li>BlockLDLQ: H~ = L D L^T with L unit lower block-triangular in 8 x 8 blocks (from the
 *       Cholesky factor C: L = C diag(C_kk)^-1 block by block). Column blocks are quantized from
 *       last to first, each to the nearest E8P12 codeword ({@link E8p#encode}, exact) of
 *       t_k = w_k + sum_{j > k} (w_j - q_j) L_jk: with e = w - q that makes
 *       tr(e H e^T) = sum_k (t_k - q_k) D_k (t_k - q_k)^T, the error of each block alone.
 *       Lazy batches: the feedback of all later chunks of 128 columns enters a chunk in one GEMM,
 *       the blocks inside a chunk update the chunk's earlier blocks with small GEMMs.</li>
 * </ol>
 * The signs come from a SplittableRandom seeded with the options' seed and W's contents, so a
 * rerun (or a resumed run) gives the same codes.
 *
 * <p>Not done: the fine-tuning of the QuIP# paper.
 */
public final class Quip implements Quantizer {

    /**
     * The RMS targets tried when {@link Options#rmsTarget()} is 0 (search): at 2 bits around and
     * above QuIP#'s 0.9 to 1.03 (stories260K did best near 1.2); with a residual stage lower (the
     * 4-bit stories260K model did best near 0.7).
     */
    static double[] scaleSearch(int bits) {
        return bits == 2 ? new double[]{0.9, 1.0, 1.1, 1.2, 1.3} : new double[]{0.6, 0.7, 0.8, 0.9, 1.0};
    }

    /**
     * Settings.
     *
     * @param bits      2 (E8P12), 3 or 4 (E8P12 plus a residual stage, {@link E8pResidual})
     * @param rmsTarget the RMS of W~ / scale (QuIP#: 0.9 at 2 bits); 0 tries each of
     *                  {@link #scaleSearch} per linear and keeps the one of least proxy error
     * @param sigmaReg  ridge added to the normalised H~ (QuIP#: 0.01)
     * @param feedback  BlockLDLQ error feedback; false rounds each block to its nearest codeword
     *                  (for comparisons)
     * @param seed      seed of the sign vectors
     */
    public record Options(int bits, double rmsTarget, double sigmaReg, boolean feedback, long seed) {
        public Options {
            E8pResidual.forBits(bits); // throws for other widths
            if (!(rmsTarget >= 0) || Double.isInfinite(rmsTarget)) throw new IllegalArgumentException("rms target must be >= 0 (0: search), got " + rmsTarget);
            if (!(sigmaReg > 0) || Double.isInfinite(sigmaReg)) throw new IllegalArgumentException("regularisation must be > 0, got " + sigmaReg);
        }

        /**
         * The scale searched per linear (rmsTarget 0), ridge 0.01, feedback on. On stories260K the
         * search gave ppl 41.8 / 43.2 / 67.9 over sign seeds 0 / 1 / 2, the spec's fixed 0.9
         * ({@link #spec()}) 57.9 / 64.6 / 85.3 (README, QuIP# section).
         */
        public static Options defaults() {
            return new Options(2, 0, 0.01, true, 0);
        }

        /** ALGORITHMS.md 7.1 as written: RMS of the scaled W~ 0.9, ridge 0.01. */
        public static Options spec() {
            return new Options(2, 0.9, 0.01, true, 0);
        }

        public Options withBits(int b) { return new Options(b, rmsTarget, sigmaReg, feedback, seed); }
        public Options withRmsTarget(double r) { return new Options(bits, r, sigmaReg, feedback, seed); }
        public Options withSigmaReg(double s) { return new Options(bits, rmsTarget, s, feedback, seed); }
        public Options withFeedback(boolean f) { return new Options(bits, rmsTarget, sigmaReg, f, seed); }
        public Options withSeed(long s) { return new Options(bits, rmsTarget, sigmaReg, feedback, s); }
    }

    /** Columns per lazy-update chunk (a multiple of 8). */
    static final int CHUNK = 128;
    /** Rows per task of the parallel block quantization. */
    private static final int ROW_TILE = 64;
    private static final int B = E8p.DIM;

    private final Options opt;

    public Quip(Options options) {
        this.opt = options;
    }

    public Options options() { return opt; }

    @Override
    public String method() { return "quip#"; }

    @Override
    public int bits() { return opt.bits(); }

    @Override
    public long storageBits(int rows, int cols) {
        return storageBits(rows, cols, opt.bits());
    }

    /**
     * Quantizes W [rows, cols] with H [cols, cols] (row-major, untouched). stats(): padded_rows,
     * padded_cols, scale, rms_target (the one used), sigma_reg (the ridge used; raised if the
     * factorization failed), transform_seconds, loop_seconds.
     */
    @Override
    public QuipLayer quantize(float[] w, int rows, int cols, double[] h) {
        Quantizer.checkShapes(w, rows, cols, h);
        long t0 = System.nanoTime();
        int m = Hadamard.paddedSize(rows, 1), n = Hadamard.paddedSize(cols, B);
        SplittableRandom rnd = new SplittableRandom(opt.seed() * 0x9E3779B97F4A7C15L ^ Arrays.hashCode(w) ^ ((long) rows << 32 | cols));
        byte[] sIn = randomSigns(n, rnd), sOut = randomSigns(m, rnd);
        Incoherence inc = new Incoherence(rows, cols, m, n, sIn, sOut);

        // 1. W~ and H~ (H~ in float: the ridge below dwarfs its rounding), then normalised.
        float[] wt = inc.forward(w);
        float[] hf = inc.hessian(h);
        double meanDiag = 0;
        for (int i = 0; i < n; i++) meanDiag += hf[i * n + i];
        meanDiag /= n;
        if (!(meanDiag > 0)) meanDiag = 1; // H = 0: no data; the ridge alone makes LDLQ plain rounding

        long t1 = System.nanoTime();

        // 2. Block LDL of the normalised H~ plus the ridge (raised if the factorization fails).
        double sigma = opt.sigmaReg();
        float[] l = null;
        double[] hd = new double[n * n];
        for (int attempt = 0; l == null; attempt++) {
            if (attempt == 30) throw new IllegalStateException("QuIP#: H~ not positive definite even with ridge " + sigma);
            if (attempt > 0) sigma *= 4;
            for (int i = 0; i < n * n; i++) hd[i] = hf[i] / meanDiag;
            for (int i = 0; i < n; i++) hd[i * n + i] += sigma;
            l = blockLdl(hd, n);
        }

        // 3. Scale W~ to RMS rmsTarget and run BlockLDLQ; with the scale search, once per candidate,
        // keeping the codes of least proxy error tr(E H~ E^T) (H~ without the ridge).
        double rms = Math.sqrt(QuantOps.dot(wt, 0, wt, 0, wt.length) / ((double) m * n));
        double[] targets = opt.rmsTarget() > 0 ? new double[]{opt.rmsTarget()} : scaleSearch(opt.bits());
        E8pResidual res = E8pResidual.forBits(opt.bits());
        short[] codes = null, codes2 = null;
        float scale = 1, bestTarget = 0;
        double bestProxy = Double.POSITIVE_INFINITY;
        float[] ws = new float[wt.length], err = new float[m * n];
        for (double target : targets) {
            float sc = (float) (rms > 0 ? rms / target : 1);
            System.arraycopy(wt, 0, ws, 0, wt.length);
            VectorOps.scale(ws, 0, ws.length, 1 / sc);
            short[] c = new short[m * (n / B)], c2 = res == E8pResidual.NONE ? null : new short[c.length];
            ldlq(ws, m, n, opt.feedback() ? l : null, c, err, res, c2);
            double proxy = targets.length == 1 ? 0 : ProxyError.trace(err, m, n, hf) * sc * sc;
            if (codes == null || proxy < bestProxy) {
                bestProxy = proxy;
                codes = c;
                codes2 = c2;
                scale = sc;
                bestTarget = (float) target;
            }
        }
        long t2 = System.nanoTime();

        Map<String, Number> stats = new LinkedHashMap<>();
        stats.put("padded_rows", m);
        stats.put("padded_cols", n);
        stats.put("scale", scale);
        stats.put("rms_target", bestTarget);
        stats.put("sigma_reg", sigma);
        stats.put("transform_seconds", (t1 - t0) / 1e9);
        stats.put("loop_seconds", (t2 - t1) / 1e9);
        return new QuipLayer(new E8pMatrix(rows, cols, m, n, codes, sIn, sOut, scale, res, codes2), stats);
    }

    /**
     * Exact bits {@link #quantize} stores for a linear [rows, cols] at a width (2, 3 or 4), as
     * {@link QuipLayer#storageBits()} counts them: the padded shape's 16-bit codes per 8 weights (plus
     * the residual stage's codes at 3 and 4 bits), one bit per input and output sign, the float32
     * scale (and the residual scale). Known before quantizing, so a bit allocation can use it.
     */
    public static long storageBits(int rows, int cols, int bits) {
        E8pResidual res = E8pResidual.forBits(bits);
        long m = Hadamard.paddedSize(rows, 1), n = Hadamard.paddedSize(cols, B);
        long codes = m * (n / B);
        long b = 16 * codes + m + n + 32;
        if (res != E8pResidual.NONE) b += (long) res.codeBits * codes + 32;
        return b;
    }

    private static byte[] randomSigns(int n, SplittableRandom rnd) {
        byte[] s = new byte[n];
        for (int i = 0; i < n; i++) s[i] = (byte) (rnd.nextBoolean() ? 1 : -1);
        return s;
    }

    /**
     * The strictly lower block part of L in H = L D L^T (8 x 8 blocks, L_kk = I), as float
     * [n, n] row-major (entries on and above the block diagonal are garbage), or null when H is not
     * positive definite. H is overwritten.
     */
    static float[] blockLdl(double[] h, int n) {
        if (Cholesky.factorLower(h, 0, n, n) != Cholesky.OK) return null;
        for (int k0 = 0; k0 + B < n; k0 += B) { // L_jk = C_jk C_kk^-1 for the rows below block k
            Triangular.solveRight(false, false, n - k0 - B, B, h, k0 * n + k0, n, h, (k0 + B) * n + k0, n);
        }
        float[] l = new float[n * n];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) h[i];
            if (!Float.isFinite(l[i])) return null;
        }
        return l;
    }

    /**
     * BlockLDLQ of W [m, n] (row-major) with the block factor l (null: no feedback): codes
     * [m, n / 8] (and codes2 of the residual stage) and the errors E = W - Q [m, n].
     */
    static void ldlq(float[] w, int m, int n, float[] l, short[] codes, float[] err, E8pResidual res, short[] codes2) {
        int per = n / B;
        float[] t = new float[m * Math.min(CHUNK, n)];
        for (int c1 = n; c1 > 0; ) {
            final int c0 = Math.max(0, c1 - CHUNK), width = c1 - c0;
            for (int r = 0; r < m; r++) System.arraycopy(w, r * n + c0, t, r * width, width); // T = W[:, c0:c1]
            if (l != null && c1 < n) // T += E[:, c1:] L[c1:, c0:c1]
                Gemm.sgemm(false, false, m, width, n - c1, 1f, err, c1, n, l, c1 * n + c0, n, 1f, t, 0, width);
            for (int k0 = c1 - B; k0 >= c0; k0 -= B) {
                final int kk = k0;
                int tiles = (m + ROW_TILE - 1) / ROW_TILE;
                Parallel.forRange(tiles, ti -> {
                    int r0 = ti * ROW_TILE, rn = Math.min(ROW_TILE, m - r0);
                    E8p.quantizeRows(t, r0 * width + kk - c0, width, w, r0 * n + kk, n, rn,
                            codes, r0 * per + kk / B, per, err, r0 * n + kk, n, new E8p.Scratch(), res, codes2);
                });
                if (l != null && k0 > c0) // T[:, c0:k0] += E[:, k0:k0+8] L[k0:k0+8, c0:k0]
                    Gemm.sgemm(false, false, m, k0 - c0, B, 1f, err, k0, n, l, k0 * n + c0, n, 1f, t, 0, width);
            }
            c1 = c0;
        }
    }
}
