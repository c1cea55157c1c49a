package casp.compress;

import casp.kernel.Gemm;
import casp.kernel.Triangular;
import casp.quant.CompressedLayer;
import casp.quant.Float32Format;
import casp.quant.ProxyError;
import casp.quant.Quantizer;
import casp.quant.aqlm.Aqlm;
import casp.quant.gptq.Gptq;
import casp.quant.gptq.GptqFormat;
import casp.quant.gptq.Rtn;
import casp.quant.lowrank.LowRankLayer;
import casp.quant.lowrank.LowRankQK;
import casp.quant.quip.Quip;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * CASP's treatment of W_q and W_k (ALGORITHMS.md section 3): whitened low-rank factors W' = A B
 * ({@link LowRankQK}), then each factor quantized per output channel:
 * <ol>
 *   <li>B [rank, in] with the layer's Hessian H (its input is the layer's input x);</li>
 *   <li>optionally A refitted to the quantized B by least squares, A = W H Bq^T (Bq H Bq^T)^-1,
 *       which minimises ||(W - A Bq) X^T|| and so absorbs part of B's rounding error;</li>
 *   <li>A [out, rank] with the Hessian of its input Bq x, H_A = Bq H Bq^T. Without rotation and with
 *       an exact B this is the diagonal S_r, so GPTQ on A is round-to-nearest; a random orthogonal
 *       rotation of the rank dimension (A R, R^T B) makes H_A dense and lets GPTQ compensate.</li>
 * </ol>
 * With the quip backend each factor at 2 to 4 bits is QuIP# codes instead ({@link #factorMethod});
 * QuIP#'s own Hadamard transform of the input already makes a diagonal H_A dense, so its BlockLDLQ
 * feedback is not idle on A. A factor width of 0 keeps that factor dense (float32): the low-rank step alone.
 * Implements {@link Quantizer} so the pipeline can use it for q_proj and k_proj like any backend;
 * it returns a {@link LowRankLayer}.
 */
public final class LowRankQuantizer implements Quantizer {

    /**
     * @param rank       fixed rank (> 0), or 0 to choose it per layer by {@code threshold}
     * @param threshold  with rank 0: the smallest rank whose relative whitened truncation loss is at
     *                   most this
     * @param backend    "gptq", "rtn" or "quip" (QuIP# at 2, 3, 4 bits; a factor at another width, 8, keeps
     *                   GPTQ: see {@link #factorMethod}): how the factors are quantized
     * @param bBits      bits of B (0: dense)
     * @param aBits      bits of A (0: dense)
     * @param groupSize  factor group size, -1 per output channel (the paper's)
     * @param rotate     random orthogonal rotation of the rank dimension
     * @param refitA     least-squares refit of A to the quantized B
     * @param seed       seed of the rotation
     * @param svd        SVD settings
     * @param aqlm       backend aqlm: the quantizer settings (codebook bits, search; the codebook count follows
     *                   each factor's width), else null. A factor is AQLM or per-channel GPTQ by
     *                   {@link CaspAqlm#factorMethod}
     */
    public record Options(int rank, double threshold, String backend, int bBits, int aBits, int groupSize, boolean rotate,
                          boolean refitA, long seed, LowRankQK.Options svd, Aqlm.Options aqlm) {
        public Options {
            if (backend.equals("aqlm") != (aqlm != null)) throw new IllegalArgumentException("AQLM settings go with (only) the aqlm backend");
            if (rank < 0) throw new IllegalArgumentException("rank must be >= 0, got " + rank);
            if (rank == 0 && !(threshold > 0 && threshold < 1)) throw new IllegalArgumentException("rank 0 needs a threshold in (0, 1)");
            if (!backend.equals("gptq") && !backend.equals("rtn") && !backend.equals("quip") && !backend.equals("aqlm"))
                throw new IllegalArgumentException("factor backend must be gptq, rtn, quip or aqlm, got " + backend);
            for (int b : new int[]{aBits, bBits}) {
                if (b != 0 && b != 2 && b != 3 && b != 4 && b != 8) throw new IllegalArgumentException("factor bits must be 0 (dense), 2, 3, 4 or 8, got " + b);
            }
        }

        /** Settings of a scalar-grid or QuIP# backend (no AQLM settings). */
        public Options(int rank, double threshold, String backend, int bBits, int aBits, int groupSize, boolean rotate, boolean refitA,
                       long seed, LowRankQK.Options svd) {
            this(rank, threshold, backend, bBits, aBits, groupSize, rotate, refitA, seed, svd, null);
        }

        /** The paper's setting at a fixed rank: GPTQ, 3 bits per channel for both factors. */
        public static Options paper(int rank) {
            return new Options(rank, 0, "gptq", 3, 3, -1, false, false, 1, LowRankQK.Options.defaults());
        }

        public Options withRank(int r) { return new Options(r, threshold, backend, bBits, aBits, groupSize, rotate, refitA, seed, svd, aqlm); }
        public Options withThreshold(double t) { return new Options(0, t, backend, bBits, aBits, groupSize, rotate, refitA, seed, svd, aqlm); }
        public Options withBackend(String b) { return new Options(rank, threshold, b, bBits, aBits, groupSize, rotate, refitA, seed, svd, null); }
        /** The aqlm backend with these quantizer settings. */
        public Options withAqlm(Aqlm.Options a) { return new Options(rank, threshold, "aqlm", bBits, aBits, groupSize, rotate, refitA, seed, svd, a); }
        public Options withBits(int b, int a) { return new Options(rank, threshold, backend, b, a, groupSize, rotate, refitA, seed, svd, aqlm); }
        public Options withRotate(boolean r) { return new Options(rank, threshold, backend, bBits, aBits, groupSize, r, refitA, seed, svd, aqlm); }
        public Options withRefitA(boolean r) { return new Options(rank, threshold, backend, bBits, aBits, groupSize, rotate, r, seed, svd, aqlm); }
        public Options withSeed(long s) { return new Options(rank, threshold, backend, bBits, aBits, groupSize, rotate, refitA, s, svd, aqlm); }
        public Options withGroupSize(int g) { return new Options(rank, threshold, backend, bBits, aBits, g, rotate, refitA, seed, svd, aqlm); }
    }

    private final Options opt;

    public LowRankQuantizer(Options options) {
        this.opt = options;
    }

    public Options options() {
        return opt;
    }

    @Override
    public String method() {
        return "casp-lowrank";
    }

    /** Bits of factor B (the nominal width of the factors). */
    @Override
    public int bits() {
        return opt.bBits();
    }

    /**
     * Exact bits of both factors of a [rows, cols] projection at the fixed rank (min(rank, rows,
     * cols)); a rank chosen from the data (the threshold rule) has no cost before quantizing.
     */
    @Override
    public long storageBits(int rows, int cols) {
        if (opt.rank() <= 0) throw new IllegalStateException("the rank is chosen from the data: no storage cost before quantizing");
        int r = Math.min(opt.rank(), Math.min(rows, cols));
        return factorBits(opt.aBits(), rows, r) + factorBits(opt.bBits(), r, cols);
    }

    private long factorBits(int bits, int rows, int cols) {
        return bits == 0 ? 32L * rows * cols : factorQuantizer(bits, rows, cols).storageBits(rows, cols);
    }

    /**
     * The quantizer a factor of this width gets under a backend: "quip#" when the backend is quip and
     * QuIP# has the width (2, 3, 4), else the scalar grid ("gptq" for the gptq and quip backends,
     * "rtn" for rtn). So with --backend quip an 8-bit factor keeps GPTQ (QuIP# has no 8-bit codebook).
     */
    public static String factorMethod(String backend, int bits) {
        if (backend.equals("quip")) return bits >= 2 && bits <= 4 ? "quip#" : "gptq";
        return backend;
    }

    /**
     * Exact bits a factor [rows, cols] stores at a width under a backend (known before quantizing):
     * QuIP#'s {@link Quip#storageBits}, or per output channel codes + fp16 scale + zero; 32 bits per
     * value at width 0 (dense). Assumes per-channel scalar grids (group size -1), as CASP uses.
     */
    public static long factorStorageBits(String backend, int rows, int cols, int bits) {
        if (bits == 0) return 32L * rows * cols;
        return factorMethod(backend, bits).equals("quip#") ? Quip.storageBits(rows, cols, bits)
                : GptqFormat.storageBits(rows, cols, bits, -1);
    }

    /**
     * The quantizer of a factor [rows, cols] at a width: {@link #factorMethod(String, int)}, or with
     * the aqlm backend AQLM at M = 8 bits / B codebooks when {@link CaspAqlm#factorMethod} says so
     * (else per-channel GPTQ).
     */
    private Quantizer factorQuantizer(int bits, int rows, int cols) {
        if (opt.aqlm() != null) {
            return CaspAqlm.factorMethod(rows, cols, bits, opt.aqlm().codebookBits()).equals("aqlm")
                    ? new Aqlm(CaspAqlm.at(opt.aqlm(), bits).withSeed(opt.aqlm().seed() * 31 + opt.seed()))
                    : new Gptq(Gptq.Options.defaults(bits).withGroupSize(opt.groupSize()));
        }
        return switch (factorMethod(opt.backend(), bits)) {
            case "quip#" -> new Quip(Quip.Options.defaults().withBits(bits).withSeed(opt.seed()));
            case "gptq" -> new Gptq(Gptq.Options.defaults(bits).withGroupSize(opt.groupSize()));
            default -> new Rtn(bits, opt.groupSize(), false, false);
        };
    }

    /**
     * Factors and quantizes W [rows, cols] with H [cols, cols] (float64; GPTQ's H or the unscaled
     * G, either works). stats(): rank, truncation_loss (relative, from the singular values),
     * whitening_damping (relative), proxy_error (tr(dW H dW^T) / tr(W H W^T) of the final A B),
     * b_proxy_error / a_proxy_error (each factor's own relative proxy error).
     */
    @Override
    public LowRankLayer quantize(float[] w, int rows, int cols, double[] h) {
        if (h == null) throw new IllegalArgumentException("low-rank factors need the layer's input statistics");
        int kmax = Math.min(rows, cols);
        int maxRank = opt.rank() > 0 ? Math.min(opt.rank(), kmax) : kmax;
        LowRankQK.Decomposition d = LowRankQK.decompose(w, rows, cols, h, maxRank, opt.svd());
        int r = opt.rank() > 0 ? maxRank : LowRankQK.rankForThreshold(d, opt.threshold());
        LowRankQK.Factors f = d.factors(r);
        if (opt.rotate()) f = f.rotated(opt.seed() * 0x9E3779B97F4A7C15L + rows * 31L + cols);
        Map<String, Number> stats = new LinkedHashMap<>();
        stats.put("rank", r);
        stats.put("a_bits", opt.aBits());
        stats.put("b_bits", opt.bBits());
        stats.put("truncation_loss", d.relativeLoss(r));
        stats.put("whitening_damping", d.whitening.relativeDamping);
        float[] a = f.a(), b = f.b();
        CompressedLayer qb = null, qa = null;
        float[] bq = b;
        if (opt.bBits() > 0) {
            qb = factorQuantizer(opt.bBits(), r, cols).quantize(b, r, cols, h);
            bq = qb.dequantize();
            stats.put("b_proxy_error", ProxyError.relative(b, bq, r, cols, h));
        }
        double[] ha = inputHessianOfA(bq, r, cols, h);
        if (opt.refitA() && opt.bBits() > 0) a = refit(w, rows, cols, bq, r, h, ha);
        if (opt.aBits() > 0) {
            qa = factorQuantizer(opt.aBits(), rows, r).quantize(a, rows, r, ha);
            stats.put("a_proxy_error", ProxyError.relative(a, qa.dequantize(), rows, r, ha));
        }
        CompressedLayer fa = qa != null ? qa : new Float32Format.Float32Layer(rows, r, a);
        CompressedLayer fb = qb != null ? qb : new Float32Format.Float32Layer(r, cols, b);
        LowRankLayer out = new LowRankLayer(method(), rows, cols, r, fa, fb, stats);
        stats.put("proxy_error", ProxyError.relative(w, out.dequantize(), rows, cols, h));
        return new LowRankLayer(method(), rows, cols, r, fa, fb, stats);
    }

    /** H_A = Bq H Bq^T [r, r] in float64. */
    static double[] inputHessianOfA(float[] bq, int r, int cols, double[] h) {
        double[] bd = LowRankQK.toDouble(bq);
        double[] t = new double[r * cols];
        Gemm.dgemm(false, false, r, cols, cols, 1, bd, 0, cols, h, 0, cols, 0, t, 0, cols);
        double[] ha = new double[r * r];
        Gemm.dgemm(false, true, r, r, cols, 1, t, 0, cols, bd, 0, cols, 0, ha, 0, r);
        for (int i = 0; i < r; i++) for (int j = 0; j < i; j++) ha[j * r + i] = ha[i * r + j] = 0.5 * (ha[i * r + j] + ha[j * r + i]);
        return ha;
    }

    /**
     * The A minimising ||(W - A Bq) X^T||: A H_A = W H Bq^T, solved with the Cholesky factor of H_A
     * (damped as {@link LowRankQK.Whitening#of} does when H_A is singular).
     */
    static float[] refit(float[] w, int rows, int cols, float[] bq, int r, double[] h, double[] ha) {
        double[] bd = LowRankQK.toDouble(bq), wd = LowRankQK.toDouble(w);
        double[] hb = new double[cols * r]; // H Bq^T
        Gemm.dgemm(false, true, cols, r, cols, 1, h, 0, cols, bd, 0, cols, 0, hb, 0, r);
        double[] p = new double[rows * r];
        Gemm.dgemm(false, false, rows, r, cols, 1, wd, 0, cols, hb, 0, r, 0, p, 0, r);
        LowRankQK.Whitening l = LowRankQK.Whitening.of(ha, r);
        double[] lf = l.factor();
        // X (L L^T) = P: first Y = P L^-T, then X = Y L^-1.
        Triangular.solveRight(false, true, rows, r, lf, 0, r, p, 0, r);
        Triangular.solveRight(false, false, rows, r, lf, 0, r, p, 0, r);
        return LowRankQK.toFloat(p);
    }
}
