package casp.compress;

import casp.model.DecoderLayer;
import casp.model.Linear;
import casp.model.LlamaModel;
import casp.quant.Quantizer;
import casp.quant.aqlm.Aqlm;
import casp.quant.aqlm.AqlmWeight;
import casp.quant.gptq.GptqFormat;
import casp.quant.lowrank.LowRankQK;
import casp.quant.quip.Quip;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The CASP decisions for one model, made before the sequential compression: the rank of every
 * low-rank W_q / W_k, the width of every other linear, and the bit budget they respect
 * (ALGORITHMS.md sections 1, 3, 5). {@link #quantizer} then serves as the compressor's
 * per-linear plan.
 *
 * <p>Equal budget: for the scalar-grid backends (gptq, rtn) the budget is exactly the bits plain
 * quantization with the same backend, width and group rule would store for every linear (codes,
 * fp16 scales, zeros). For QuIP# (backend quip) it is the target itself, bits x original linear
 * weights: plain QuIP# stores a little more than that (the padding's codes, the sign vectors and
 * scales), so CASP-QuIP# is held to a stricter budget than QuIP# alone and its effective bits never
 * exceed the target; with {@link Options#plainBudget} it is what QuIP# alone stores at the target
 * (equal storage). The low-rank factors (at their own widths, per channel; with quip as QuIP#
 * codes at 2 to 4 bits) are paid for first; the rest goes to the other linears, each at the target
 * width or wider where the allocation says so. Every cost is exact ({@link #linearCost},
 * {@link LowRankQuantizer#factorStorageBits}), known before quantizing.
 *
 * <p>AQLM (backend aqlm, {@link CaspAqlm}): a width w is M = 8 w / B codebooks of B bits; the costs
 * count codes, codebooks and per-row scales. The budget is the target itself (bits x weights), or
 * with {@link Options#plainBudget} what plain AQLM at the target stores (AQLM's codebooks make that
 * far more than the target on small models). When even the cheapest plan exceeds the budget the
 * plan is refused ({@link IllegalArgumentException} naming the cheapest plan's bits).
 */
public final class CaspPlan {

    /** How the q/k ranks are chosen. */
    public enum RankRule {
        /** The paper's: r = floor(m n rho / (m + n)) in every layer. */
        RATIO,
        /** Per layer: the smallest rank whose relative whitened truncation loss is at most a threshold. */
        THRESHOLD,
        /** The ratio rule's total rank (q and k separately), split over the layers to minimise the summed loss. */
        BUDGET,
        /**
         * The ratio rule's total rank split to minimise the sum of each layer's loss weighted by its
         * attention density 1 - sparsity (measured on the calibration samples): the paper's bound says
         * a sparse attention map barely moves when W_q and W_k change, so sparse layers give up rank.
         */
        SPARSITY;

        public static RankRule parse(String s) {
            for (RankRule r : values()) if (r.name().toLowerCase(Locale.ROOT).equals(s)) return r;
            throw new IllegalArgumentException("unknown rank rule '" + s + "' (expected ratio, threshold, budget or sparsity)");
        }
    }

    /**
     * CASP settings.
     *
     * @param backend       "gptq", "rtn" or "quip" (QuIP#)
     * @param bits          target width (2 or 3); the allocation's candidates are bits and bits + 1
     * @param rankRule      how ranks are chosen
     * @param rankRatio     rho of the ratio rule (and the budget rule's total)
     * @param rankThreshold relative truncation loss of the threshold rule
     * @param allocation    allocation mode
     * @param perLinear     allocation unit: single linears (true) or decoder layers
     * @param factorBits    width of factor B (and of A unless aBits > 0)
     * @param aBits         width of factor A, 0 for factorBits
     * @param rotate        random orthogonal rotation of the rank dimension
     * @param refitA        least-squares refit of A to the quantized B
     * @param lowRank       replace q/k by low-rank factors (false: allocation only)
     * @param aqlm          backend aqlm: the quantizer settings (codebook bits, search); the number of
     *                      codebooks follows each width ({@link CaspAqlm#at}); null for the other backends
     * @param plainBudget   backend aqlm or quip: budget = what the backend alone stores at the target
     *                      instead of the target x weights
     * @param shareCodebooks backend aqlm: the linears of one name (v_proj, ..., down_proj) at one width
     *                      share one codebook set, fitted by the first layer that has that width and
     *                      stored with it; the later layers fit codes and scales to it
     */
    public record Options(String backend, int bits, RankRule rankRule, double rankRatio, double rankThreshold,
                          BitAllocation.Mode allocation, boolean perLinear, int factorBits, int aBits, boolean rotate,
                          boolean refitA, boolean lowRank, Aqlm.Options aqlm, boolean plainBudget, boolean shareCodebooks) {
        /** Codebooks not shared. */
        public Options(String backend, int bits, RankRule rankRule, double rankRatio, double rankThreshold, BitAllocation.Mode allocation,
                       boolean perLinear, int factorBits, int aBits, boolean rotate, boolean refitA, boolean lowRank, Aqlm.Options aqlm,
                       boolean plainBudget) {
            this(backend, bits, rankRule, rankRatio, rankThreshold, allocation, perLinear, factorBits, aBits, rotate, refitA, lowRank, aqlm,
                    plainBudget, false);
        }

        public Options {
            if (shareCodebooks && aqlm == null) throw new IllegalArgumentException("shared codebooks are for the aqlm backend");
            if (!backend.equals("gptq") && !backend.equals("rtn") && !backend.equals("quip") && !backend.equals("aqlm"))
                throw new IllegalArgumentException("backend must be gptq, rtn, quip or aqlm, got " + backend);
            if (backend.equals("aqlm") != (aqlm != null)) throw new IllegalArgumentException("AQLM settings go with (only) the aqlm backend");
            if (plainBudget && !backend.equals("aqlm") && !backend.equals("quip"))
                throw new IllegalArgumentException("the plain-budget choice is for the aqlm and quip backends");
            if (aqlm != null) {
                for (int w : new int[]{bits, bits + 1}) {
                    if (!CaspAqlm.available(w, aqlm.codebookBits()))
                        throw new IllegalArgumentException("with " + aqlm.codebookBits() + "-bit codebooks the width " + w + " needs "
                                + (w * 8.0 / aqlm.codebookBits()) + " codebooks (a whole number up to 16)");
                }
            }
            if (backend.equals("quip") && bits + 1 > 4) throw new IllegalArgumentException("QuIP# has 2, 3 and 4 bits: target 2 or 3");
            if (bits != 2 && bits != 3) throw new IllegalArgumentException("CASP targets 2 or 3 bits (candidates {2,3} or {3,4}), got " + bits);
            if (!(rankRatio > 0 && rankRatio <= 1)) throw new IllegalArgumentException("rank ratio must be in (0, 1], got " + rankRatio);
            if (!(rankThreshold > 0 && rankThreshold < 1)) throw new IllegalArgumentException("rank threshold must be in (0, 1), got " + rankThreshold);
        }

        /** The settings of the scalar-grid and QuIP# backends (no AQLM settings, the backend's own budget rule). */
        public Options(String backend, int bits, RankRule rankRule, double rankRatio, double rankThreshold, BitAllocation.Mode allocation,
                       boolean perLinear, int factorBits, int aBits, boolean rotate, boolean refitA, boolean lowRank) {
            this(backend, bits, rankRule, rankRatio, rankThreshold, allocation, perLinear, factorBits, aBits, rotate, refitA, lowRank, null, false);
        }

        /** The same settings with another allocation mode (e.g. uniform for the low-rank step alone). */
        public Options withAllocation(BitAllocation.Mode mode) {
            return new Options(backend, bits, rankRule, rankRatio, rankThreshold, mode, perLinear, factorBits, aBits, rotate, refitA, lowRank,
                    aqlm, plainBudget, shareCodebooks);
        }

        public int widthOfA() {
            return aBits > 0 ? aBits : factorBits;
        }

        /** The defaults: GPTQ 2-bit, ratio 0.25, measured allocation over single linears, 3-bit factors. */
        public static Options defaults() {
            return new Options("gptq", 2, RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.MEASURED, true, 3, 0, false, false, true);
        }
    }

    /** Makes the backend quantizer for a width and a linear's input width (the group rule lives there). */
    @FunctionalInterface
    public interface Backend {
        Quantizer quantizer(int bits, int inputWidth);
    }

    /**
     * The plain backend's group rule, for exact bit costs: group size for an input width.
     */
    @FunctionalInterface
    public interface GroupRule {
        int groupSize(int inputWidth);
    }

    public final Options options;
    public final int layers;
    /** Ranks of the low-rank W_q / W_k per layer (0 when q/k are not low-rank). */
    public final int[] qRank, kRank;
    /** Relative whitened truncation loss at the chosen ranks on the probe's statistics (NaN when not measured). */
    public final double[] qLoss, kLoss;
    /** Bits plain quantization would store for all linears: the budget. */
    public final long budgetBits;
    /** Bits of the low-rank factors (fixed before the allocation). */
    public final long factorBits;
    /** Original linear weights. */
    public final long originalWeights;
    /** The allocation over the other linears. */
    public final BitAllocation.Result allocation;
    /**
     * With shared codebooks: the bits of the codebook sets the allocation uses (each stored once,
     * with its owner), not in the allocation's costs; 0 otherwise.
     */
    public final long sharedCodebookBits;
    /** With shared codebooks: "name/width" -> the layer that fits and stores that codebook set. */
    private final Map<String, Integer> codebookOwner = new HashMap<>();
    /** With shared codebooks: "name/width" -> the owner's fitted codebooks, filled as the owners are quantized. */
    private final Map<String, float[]> sharedCodebooks = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, Integer> width = new HashMap<>(), inputWidth = new HashMap<>();
    private final Backend backend;
    private final GroupRule groups;
    private final LowRankQuantizer.Options factorOptions;

    private CaspPlan(Options options, int layers, int[] qRank, int[] kRank, double[] qLoss, double[] kLoss, long budgetBits,
                     long factorBits, long originalWeights, BitAllocation.Result allocation, long sharedCodebookBits, Backend backend,
                     GroupRule groups, LowRankQuantizer.Options factorOptions) {
        this.options = options;
        this.layers = layers;
        this.qRank = qRank;
        this.kRank = kRank;
        this.qLoss = qLoss;
        this.kLoss = kLoss;
        this.budgetBits = budgetBits;
        this.factorBits = factorBits;
        this.originalWeights = originalWeights;
        this.allocation = allocation;
        this.sharedCodebookBits = sharedCodebookBits;
        this.backend = backend;
        this.groups = groups;
        this.factorOptions = factorOptions;
    }

    /** The linears whose width the allocation chooses: all but q/k when those are low-rank. */
    public static List<String> allocatable(boolean lowRank) {
        List<String> out = new ArrayList<>(DecoderLayer.LINEARS);
        if (lowRank) {
            out.remove(DecoderLayer.Q);
            out.remove(DecoderLayer.K);
        }
        return out;
    }

    /**
     * Decides ranks and widths.
     *
     * @param m measurements of the uncompressed model; its distortions are needed by the closed-form
     *          and measured modes, its q/k SVDs by the threshold and budget rank rules
     */
    public static CaspPlan make(LlamaModel model, Options o, AllocationProbe.Measurements m, Backend backend, GroupRule groups,
                                LowRankQK.Options svd) {
        int L = model.numLayers();
        int[] qr = new int[L], kr = new int[L];
        double[] ql = new double[L], kl = new double[L];
        java.util.Arrays.fill(ql, Double.NaN);
        java.util.Arrays.fill(kl, Double.NaN);
        long budget = 0, weights = 0, fixed = 0;
        for (int l = 0; l < L; l++) {
            for (String name : DecoderLayer.LINEARS) {
                Linear lin = model.layer(l).linear(name);
                budget += linearCost(o, lin.out(), lin.in(), o.bits(), groups.groupSize(lin.in()));
                weights += (long) lin.out() * lin.in();
            }
        }
        if ((o.backend().equals("quip") || o.backend().equals("aqlm")) && !o.plainBudget())
            budget = (long) o.bits() * weights; // the target itself (see the class comment)
        if (o.lowRank()) {
            Linear q0 = model.layer(0).linear(DecoderLayer.Q), k0 = model.layer(0).linear(DecoderLayer.K);
            int rq = LowRankQK.rankForRatio(q0.out(), q0.in(), o.rankRatio()), rk = LowRankQK.rankForRatio(k0.out(), k0.in(), o.rankRatio());
            switch (o.rankRule()) {
                case RATIO -> {
                    java.util.Arrays.fill(qr, rq);
                    java.util.Arrays.fill(kr, rk);
                }
                case THRESHOLD -> {
                    need(m, "threshold");
                    for (int l = 0; l < L; l++) {
                        qr[l] = LowRankQK.rankForThreshold(m.q()[l], o.rankThreshold());
                        kr[l] = LowRankQK.rankForThreshold(m.k()[l], o.rankThreshold());
                    }
                }
                case BUDGET -> {
                    need(m, "budget");
                    int[] a = LowRankQK.splitRankBudget(java.util.Arrays.asList(m.q()), rq * L, 1);
                    int[] b = LowRankQK.splitRankBudget(java.util.Arrays.asList(m.k()), rk * L, 1);
                    System.arraycopy(a, 0, qr, 0, L);
                    System.arraycopy(b, 0, kr, 0, L);
                }
                case SPARSITY -> {
                    need(m, "sparsity");
                    if (m.sparsity() == null) throw new IllegalArgumentException("the sparsity rank rule needs the probe's attention sparsity");
                    double[] density = new double[L];
                    for (int l = 0; l < L; l++) density[l] = 1 - m.layerSparsity(l);
                    int[] a = LowRankQK.splitRankBudget(java.util.Arrays.asList(m.q()), rq * L, 1, density);
                    int[] b = LowRankQK.splitRankBudget(java.util.Arrays.asList(m.k()), rk * L, 1, density);
                    System.arraycopy(a, 0, qr, 0, L);
                    System.arraycopy(b, 0, kr, 0, L);
                }
                default -> throw new AssertionError();
            }
            for (int l = 0; l < L; l++) {
                if (m != null && m.q() != null) {
                    if (qr[l] <= m.q()[l].knownRanks()) ql[l] = m.q()[l].relativeLoss(qr[l]);
                    if (kr[l] <= m.k()[l].knownRanks()) kl[l] = m.k()[l].relativeLoss(kr[l]);
                }
                Linear q = model.layer(l).linear(DecoderLayer.Q), k = model.layer(l).linear(DecoderLayer.K);
                fixed += factorCost(q.out(), q.in(), qr[l], o) + factorCost(k.out(), k.in(), kr[l], o);
            }
        }
        List<BitAllocation.LinearInfo> infos = new ArrayList<>();
        boolean needDist = o.allocation() == BitAllocation.Mode.CLOSED_FORM || o.allocation() == BitAllocation.Mode.MEASURED;
        if (needDist && m == null) throw new IllegalArgumentException(o.allocation().cliName() + " allocation needs measurements");
        for (int l = 0; l < L; l++) {
            for (String name : allocatable(o.lowRank())) {
                Linear lin = model.layer(l).linear(name);
                double[] d = m == null ? null : m.distortion().get(l).get(name);
                infos.add(new BitAllocation.LinearInfo(l, name, lin.out(), lin.in(), groups.groupSize(lin.in()), d));
            }
        }
        int[] widths = {o.bits(), o.bits() + 1};
        if (m != null && !java.util.Arrays.equals(m.widths(), widths))
            throw new IllegalArgumentException("measurements are for widths " + java.util.Arrays.toString(m.widths()));
        // Shared codebooks: a linear costs its codes, scales and codebook reference; every codebook set
        // the allocation could use (one per name and candidate width) is set aside from the budget first.
        long reserved = 0;
        if (o.shareCodebooks()) {
            for (String name : allocatable(o.lowRank())) for (int w : widths) reserved += codebookSetBits(o, w);
        }
        List<BitAllocation.Unit> units = BitAllocation.units(infos, widths, !o.perLinear(),
                (li, b) -> o.shareCodebooks() ? sharedLinearCost(o, li.rows(), li.cols(), b) : linearCost(o, li.rows(), li.cols(), b, li.groupSize()));
        if (o.backend().equals("aqlm")) { // small layers: AQLM's codebooks and scales may not fit the target at all
            long cheapest = fixed + reserved;
            for (BitAllocation.Unit u : units) cheapest += u.costBits()[0];
            if (cheapest > budget)
                throw new IllegalArgumentException(String.format(java.util.Locale.ROOT, "--backend aqlm with %d-bit codebooks: the cheapest "
                        + "plan (every linear at %d bits = %dx%d, factors %s) stores %d bits = %.4f bits per weight, above the budget (%s) of "
                        + "%d bits = %.4f: the codebooks and per-row scales cost too much on layers this small%s%s", o.aqlm().codebookBits(), o.bits(), CaspAqlm.codebooks(o.bits(), o.aqlm().codebookBits()),
                        o.aqlm().codebookBits(), o.widthOfA() == o.factorBits() ? o.factorBits() + "-bit" : "B " + o.factorBits() + " / A "
                        + o.widthOfA() + "-bit", cheapest, (double) cheapest / weights, o.plainBudget() ? "plain aqlm" : o.bits() + " bits x weights",
                        budget, (double) budget / weights, o.aqlm().codebookBits() > 2 ? "; try --codebook-bits 2 (the smallest codebooks)" : "",
                        o.plainBudget() ? "" : "; --budget plain allows what plain AQLM stores at the target"));
        }
        if (budget - fixed < 0) throw new IllegalArgumentException("the low-rank factors alone (" + fixed + " bits) exceed the budget " + budget);
        BitAllocation.Result alloc = BitAllocation.solve(o.allocation(), units, budget - fixed - reserved);
        if (o.shareCodebooks() && o.perLinear()) {
            // Codebook sets no linear took: release their bits and solve again without those widths
            // for those names, until every set left is used (each round only removes sets).
            java.util.Set<String> banned = new java.util.HashSet<>();
            for (int round = 0; round < 2 * widths.length; round++) {
                java.util.Set<String> unused = new java.util.HashSet<>();
                for (String name : allocatable(o.lowRank())) for (int w : widths) if (!banned.contains(name + "/" + w)) unused.add(name + "/" + w);
                for (int u = 0; u < units.size(); u++) unused.remove(infos.get(u).name() + "/" + alloc.width(u));
                if (unused.isEmpty()) break;
                banned.addAll(unused);
                for (String set : unused) reserved -= codebookSetBits(o, Integer.parseInt(set.substring(set.indexOf('/') + 1)));
                units = restrictedUnits(infos, widths, banned, o);
                alloc = BitAllocation.solve(o.allocation(), units, budget - fixed - reserved);
            }
        }
        LowRankQuantizer.Options fo = new LowRankQuantizer.Options(1, 0, o.backend(), o.factorBits(), o.widthOfA(), -1, o.rotate(),
                o.refitA(), 1, svd, o.aqlm());
        Map<String, Integer> owners = new HashMap<>();
        long codebookBits = 0;
        if (o.shareCodebooks()) { // the lowest layer with a (name, width) owns that codebook set
            for (BitAllocation.LinearInfo li : infos) {
                int w = alloc.width(unitOf(units, o, li));
                if (owners.putIfAbsent(li.name() + "/" + w, li.layer()) == null) codebookBits += codebookSetBits(o, w);
            }
        }
        CaspPlan plan = new CaspPlan(o, L, qr, kr, ql, kl, budget, fixed, weights, alloc, codebookBits, backend, groups, fo);
        plan.codebookOwner.putAll(owners);
        for (int u = 0; u < units.size(); u++) {
            BitAllocation.Unit unit = units.get(u);
            int w = alloc.width(u);
            for (BitAllocation.LinearInfo li : infos) {
                boolean member = o.perLinear() ? unit.name().equals("layers." + li.layer() + "." + li.name()) : li.layer() == unit.layer();
                if (member) {
                    plan.width.put(key(li.layer(), li.name()), w);
                    plan.inputWidth.put(key(li.layer(), li.name()), li.cols());
                }
            }
        }
        return plan;
    }

    /** One unit per linear (in the order of infos) at the widths whose codebook set is not banned ("name/width"). */
    private static List<BitAllocation.Unit> restrictedUnits(List<BitAllocation.LinearInfo> infos, int[] widths, java.util.Set<String> banned,
                                                            Options o) {
        List<BitAllocation.Unit> out = new ArrayList<>();
        for (BitAllocation.LinearInfo li : infos) {
            int n = 0;
            for (int w : widths) if (!banned.contains(li.name() + "/" + w)) n++;
            int[] ws = new int[n];
            long[] cost = new long[n];
            double[] dist = li.distortion() == null ? null : new double[n];
            int j = 0;
            for (int c = 0; c < widths.length; c++) {
                if (banned.contains(li.name() + "/" + widths[c])) continue;
                ws[j] = widths[c];
                cost[j] = sharedLinearCost(o, li.rows(), li.cols(), widths[c]);
                if (dist != null) dist[j] = li.distortion()[c];
                j++;
            }
            out.add(new BitAllocation.Unit("layers." + li.layer() + "." + li.name(), li.layer(), (long) li.rows() * li.cols(), ws, cost, dist));
        }
        return out;
    }

    /** The index of the unit a linear belongs to. */
    private static int unitOf(List<BitAllocation.Unit> units, Options o, BitAllocation.LinearInfo li) {
        for (int u = 0; u < units.size(); u++) {
            BitAllocation.Unit unit = units.get(u);
            if (o.perLinear() ? unit.name().equals("layers." + li.layer() + "." + li.name()) : li.layer() == unit.layer()) return u;
        }
        throw new IllegalStateException("no allocation unit for layer " + li.layer() + " " + li.name());
    }

    /** Bits a codebook set at a width adds to the linear that stores it (its codebooks, less the reference it then does not store). */
    static long codebookSetBits(Options o, int bits) {
        int b = o.aqlm().codebookBits();
        return AqlmWeight.storageBits(1, Aqlm.GROUP, CaspAqlm.codebooks(bits, b), b) - AqlmWeight.sharedStorageBits(1, Aqlm.GROUP,
                CaspAqlm.codebooks(bits, b), b);
    }

    /** Exact bits of an AQLM linear that refers to shared codebooks: codes, scales, the reference. */
    static long sharedLinearCost(Options o, int rows, int cols, int bits) {
        int b = o.aqlm().codebookBits();
        return AqlmWeight.sharedStorageBits(rows, cols, CaspAqlm.codebooks(bits, b), b);
    }

    private static void need(AllocationProbe.Measurements m, String rule) {
        if (m == null || m.q() == null) throw new IllegalArgumentException("the " + rule + " rank rule needs the q/k SVDs of the probe");
    }

    /**
     * Exact bits of the factors of an [m, n] projection at rank r under the backend (per output
     * channel grids, or QuIP# codes). Dense factors (width 0, only with --lowrank-only, where no
     * budget is enforced) are charged as before: an fp16 scale and no codes per row.
     */
    static long factorCost(int m, int n, int r, Options o) {
        return cost(o, r, n, o.factorBits()) + cost(o, m, r, o.widthOfA());
    }

    private static long cost(Options o, int rows, int cols, int bits) {
        if (bits == 0) return GptqFormat.storageBits(rows, cols, 0, -1);
        if (o.aqlm() != null) return CaspAqlm.factorCost(rows, cols, bits, o.aqlm().codebookBits());
        return LowRankQuantizer.factorStorageBits(o.backend(), rows, cols, bits);
    }

    /** {@link #linearCost(String, int, int, int, int)} under the options' backend (AQLM: at its codebook bits). */
    public static long linearCost(Options o, int rows, int cols, int bits, int groupSize) {
        if (o.aqlm() != null) return CaspAqlm.linearCost(rows, cols, bits, o.aqlm().codebookBits());
        return linearCost(o.backend(), rows, cols, bits, groupSize);
    }

    /**
     * Exact stored bits of a (non-factor) linear [rows, cols] at a width under a backend: QuIP#'s
     * codes, signs and scales ({@link Quip#storageBits}), or codes plus an fp16 scale and a zero per
     * group and row.
     */
    public static long linearCost(String backend, int rows, int cols, int bits, int groupSize) {
        return backend.equals("quip") ? Quip.storageBits(rows, cols, bits) : GptqFormat.storageBits(rows, cols, bits, groupSize);
    }

    private static String key(int layer, String name) {
        return layer + "/" + name;
    }

    /** The width chosen for a linear that is not low-rank. */
    public int width(int layer, String name) {
        Integer w = width.get(key(layer, name));
        if (w == null) throw new IllegalArgumentException("layer " + layer + " " + name + " has no width in the plan");
        return w;
    }

    /** Whether the linear is replaced by low-rank factors. */
    public boolean isLowRank(String name) {
        return options.lowRank() && (name.equals(DecoderLayer.Q) || name.equals(DecoderLayer.K));
    }

    /** The compressor's plan: low-rank factors for q/k, the backend at the allocated width otherwise. */
    public Quantizer quantizer(int layer, String name) {
        if (isLowRank(name)) {
            int r = name.equals(DecoderLayer.Q) ? qRank[layer] : kRank[layer];
            return new LowRankQuantizer(factorOptions.withRank(r).withSeed(layer * 2L + (name.equals(DecoderLayer.Q) ? 0 : 1)));
        }
        int w = width(layer, name);
        Quantizer q = backend.quantizer(w, inputWidth.get(key(layer, name)));
        if (!options.shareCodebooks()) return q;
        String set = name + "/" + w;
        return new SharedCodebooks(this, (Aqlm) q, set, codebookOwner.get(set), layer);
    }

    /**
     * The quantizer of one linear under shared codebooks: the set's owner fits codebooks as plain
     * AQLM and leaves them in the plan; the later layers fit codes and scales to them. Stateful
     * through the plan: the owner's layer must be quantized first (the compressor goes layer by layer).
     */
    private record SharedCodebooks(CaspPlan plan, Aqlm aqlm, String set, int owner, int layer) implements Quantizer {
        @Override public String method() { return aqlm.method(); }

        @Override public int bits() { return aqlm.bits(); }

        @Override
        public long storageBits(int rows, int cols) {
            Aqlm.Options a = aqlm.options();
            return layer == owner ? aqlm.storageBits(rows, cols) : AqlmWeight.sharedStorageBits(rows, cols, a.numCodebooks(), a.codebookBits());
        }

        @Override
        public casp.quant.CompressedLayer quantize(float[] w, int rows, int cols, double[] h) {
            if (layer == owner) {
                AqlmWeight q = aqlm.quantize(w, rows, cols, h);
                plan.sharedCodebooks.put(set, q.codebooks);
                return q;
            }
            float[] cb = plan.sharedCodebooks.get(set);
            if (cb == null) throw new IllegalStateException("codebooks " + set + " of layer " + owner + " are not fitted yet (layer " + layer + ")");
            return aqlm.quantizeWithCodebooks(w, rows, cols, h, cb, owner);
        }
    }

    /** Codebook sets stored once for several layers (0 without shared codebooks). */
    public int sharedCodebookSets() {
        return codebookOwner.size();
    }

    /** Bits the plan will store: factors plus the allocated linears plus shared codebooks (exact, known before quantizing). */
    public long plannedBits() {
        return factorBits + allocation.bitsUsed() + sharedCodebookBits;
    }

    /** plannedBits / original weights. */
    public double plannedEffectiveBits() {
        return (double) plannedBits() / originalWeights;
    }

    /** budget / original weights: plain quantization's effective bits (quip, and aqlm unless plain: the target). */
    public double budgetEffectiveBits() {
        return (double) budgetBits / originalWeights;
    }
}
