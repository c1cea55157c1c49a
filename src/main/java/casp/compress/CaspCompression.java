package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.model.LlamaModel;
import casp.quant.QuantizationConfig;
import casp.quant.Quantizer;
import casp.quant.aqlm.Aqlm;
import casp.quant.lowrank.LowRankQK;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * `casp compress --method casp`: the CASP pipeline on top of the sequential compressor
 * (ALGORITHMS.md section 1). Before compressing: measure the uncompressed model on the calibration
 * samples ({@link AllocationProbe}), decide ranks and widths ({@link CaspPlan}); the plan's
 * quantizers then drive {@link SequentialCompressor}: q/k become low-rank factors
 * ({@link LowRankQuantizer}), every other linear gets the backend at its allocated width. After:
 * check the stored bits against the budget, and describe it all in the report, the
 * quantization_config and a chart.
 */
public final class CaspCompression {
    /** Attention entries below this count as sparse for the sparsity rank rule (ALGORITHMS.md section 4's default). */
    static final double SPARSITY_TAU = 0.01;

    private final CaspPlan plan;
    private final AllocationProbe.Measurements measured;
    private final CompressionOptions backend;
    /** Keep every linear but q/k in float32 (the low-rank step alone). */
    private final boolean lowRankOnly;

    private CaspCompression(CaspPlan plan, AllocationProbe.Measurements measured, CompressionOptions backend, boolean lowRankOnly) {
        this.plan = plan;
        this.measured = measured;
        this.backend = backend;
        this.lowRankOnly = lowRankOnly;
    }

    public CaspPlan plan() {
        return plan;
    }

    /** Seconds the measurement of the uncompressed model took (0 when the plan needed none). */
    public double measureSeconds() {
        return measured == null ? 0 : measured.seconds();
    }

    /** The measurements of the uncompressed model the plan rests on (null when it needed none). */
    public AllocationProbe.Measurements measurements() {
        return measured;
    }

    /** The part of {@link #measureSeconds()} spent running the layers on the samples. */
    public double measureForwardSeconds() {
        return measured == null ? 0 : measured.forwardSeconds();
    }

    /** The backend quantizer at a width, with the pipeline's group rule for the input width. */
    static Quantizer backendQuantizer(CompressionOptions opt, int bits, int inputWidth) {
        Aqlm.Options a = opt.method().equals("aqlm") ? CaspAqlm.at(opt.aqlmOptions(), bits) : null; // M = 8 bits / B codebooks
        return new CompressionOptions(opt.method(), bits, opt.groupSize(), opt.actOrder(), opt.symmetric(), opt.trueSequential(),
                opt.samples(), opt.seqLen(), opt.seed(), opt.percDamp(), a).quantizer(inputWidth);
    }

    /**
     * Measures and plans. calib holds the calibration inputs of the first block (embeddings); it is
     * read, not modified.
     *
     * @param lowRankOnly only q/k are compressed (to low-rank factors); the rest stays float32
     */
    public static CaspCompression prepare(LlamaModel model, Calibration calib, CompressionOptions opt, CaspPlan.Options o,
                                          boolean lowRankOnly, PrintStream log) {
        return prepare(model, calib, opt, o, lowRankOnly, log, null, null, null, null);
    }

    /**
     * A measurement in parts: the layers an earlier part measured (done, may be null) with the
     * inputs of the next layer (inputs, null when done is; the caller closes them), the sink for each
     * layer measured now and the most layers to measure now (0: the rest); see
     * {@link AllocationProbe.Split}. Used only when the measurement can be kept (no q/k spectra).
     */
    public record MeasureParts(AllocationProbe.Measurements done, ActivationStore inputs, AllocationProbe.LayerSink sink, int maxLayers) {}

    /**
     * As {@link #prepare(LlamaModel, Calibration, CompressionOptions, CaspPlan.Options, boolean, PrintStream)}
     * on a model whose blocks weights reads one at a time (null: all in memory); the measurement's
     * working copy of the samples may spill to probeSpill (null: kept in memory). saved (may be
     * null) are the measurements of an earlier part of the same run (a checkpoint's): they are used
     * instead of measuring again, and calib may then be null. parts (may be null) splits the
     * measurement; it throws {@link AllocationProbe.Stopped} when its part ends before the last layer.
     */
    public static CaspCompression prepare(LlamaModel model, Calibration calib, CompressionOptions opt, CaspPlan.Options o,
                                          boolean lowRankOnly, PrintStream log, BlockWeights weights, Path probeSpill,
                                          AllocationProbe.Measurements saved, MeasureParts parts) {
        if (o.bits() != opt.bits()) throw new IllegalArgumentException("CASP and backend widths differ");
        if (o.backend().equals("aqlm") && (!opt.method().equals("aqlm") || !o.aqlm().equals(opt.aqlmOptions())))
            throw new IllegalArgumentException("CASP and backend AQLM settings differ");
        CaspPlan.Backend be = (bits, in) -> backendQuantizer(opt, bits, in);
        CaspPlan.GroupRule groups = in -> CompressionOptions.groupSizeFor(opt.groupSize(), in);
        if (o.aqlm() != null && !lowRankOnly && o.rankRule() == CaspPlan.RankRule.RATIO) {
            try { // AQLM's codebooks may not fit the budget at all (small layers): say so before the slow measurement
                CaspPlan.make(model, o.withAllocation(BitAllocation.Mode.UNIFORM), null, be, groups, LowRankQK.Options.defaults());
            } catch (IllegalArgumentException e) {
                throw new casp.io.BadInputException("casp: " + e.getMessage());
            }
        }
        boolean needDist = !lowRankOnly && (o.allocation() == BitAllocation.Mode.MEASURED || o.allocation() == BitAllocation.Mode.CLOSED_FORM);
        boolean needSvd = o.lowRank() && o.rankRule() != CaspPlan.RankRule.RATIO;
        AllocationProbe.Measurements m = null;
        if ((needDist || needSvd) && saved != null && !(needSvd && saved.q() == null)
                && !(o.rankRule() == CaspPlan.RankRule.SPARSITY && saved.sparsity() == null)) {
            m = saved;
        } else if (needDist || needSvd) {
            int maxRank = 0;
            if (needSvd) {
                var q = model.layer(0).linear(casp.model.DecoderLayer.Q);
                maxRank = Math.min(q.out(), q.in());
                if (maxRank > LowRankQK.Options.defaults().exactMaxDim()) // randomized: four times the ratio rank is plenty
                    maxRank = Math.min(maxRank, 4 * LowRankQK.rankForRatio(q.out(), q.in(), o.rankRatio()));
            }
            boolean split = parts != null && maxRank == 0;
            if (parts != null && parts.maxLayers() > 0 && !split)
                throw new casp.io.BadInputException("--max-measured-layers: this rank rule measures q/k spectra, which a checkpoint "
                        + "does not keep, so its measurement cannot be split");
            boolean resumed = split && parts.done() != null && parts.inputs() != null;
            log.println("casp: measuring the uncompressed model (" + (needDist ? "distortion at " + o.bits() + " and " + (o.bits() + 1)
                    + " bits, block influence" : "") + (needDist && needSvd ? ", " : "") + (needSvd ? "q/k spectra" : "")
                    + (o.rankRule() == CaspPlan.RankRule.SPARSITY ? ", attention sparsity" : "") + ")"
                    + (resumed ? " from layer " + parts.done().influence().length + " of " + model.numLayers() + ", where the checkpoint's stopped" : "")
                    + " ...");
            long start = System.nanoTime();
            int firstLayer = resumed ? parts.done().influence().length : 0;
            AllocationProbe.Listener progress = (layer, layers) -> { // a line per layer: the whole takes hours at 7B
                double s = (System.nanoTime() - start) / 1e9, per = s / (layer - firstLayer);
                log.printf(Locale.ROOT, "casp: measured layer %d of %d (%.1f s per layer, about %.1f min left)%n",
                        layer, layers, per, per * (layers - layer) / 60);
            };
            try (ActivationStore work = resumed ? parts.inputs() : calib.store().copy(probeSpill)) {
                m = AllocationProbe.measure(model, work, weights, needDist ? CaspPlan.allocatable(o.lowRank()) : List.of(),
                        new int[]{o.bits(), o.bits() + 1}, bits -> in -> be.quantizer(bits, in), maxRank, LowRankQK.Options.defaults(),
                        o.rankRule() == CaspPlan.RankRule.SPARSITY ? SPARSITY_TAU : 0, progress,
                        split ? new AllocationProbe.Split(resumed ? parts.done() : null, parts.sink(), parts.maxLayers()) : null);
            }
        }
        CaspPlan.Options eff = lowRankOnly
                ? new CaspPlan.Options(o.backend(), o.bits(), o.rankRule(), o.rankRatio(), o.rankThreshold(), BitAllocation.Mode.UNIFORM,
                o.perLinear(), o.factorBits(), o.aBits(), o.rotate(), o.refitA(), true, o.aqlm(), o.plainBudget(), o.shareCodebooks())
                : o;
        CaspPlan plan;
        try {
            plan = CaspPlan.make(model, eff, m, be, groups, LowRankQK.Options.defaults());
        } catch (IllegalArgumentException e) {
            throw new casp.io.BadInputException("casp: " + e.getMessage());
        }
        return new CaspCompression(plan, m, opt, lowRankOnly);
    }

    /** The compressor's per-linear plan. */
    public SequentialCompressor.QuantizerPlan quantizerPlan() {
        return (layer, name) -> lowRankOnly && !plan.isLowRank(name) ? null : plan.quantizer(layer, name);
    }

    /**
     * Exact stored bits of the results, as each layer's format counts them ({@link casp.quant.CompressedLayer#storageBits}).
     */
    public static long storedBits(List<BlockResult> blocks) {
        long bits = 0;
        for (BlockResult b : blocks) {
            for (LinearResult r : b.linears()) {
                bits += r.stored().storageBits();
            }
        }
        return bits;
    }

    /**
     * Checks the result against the budget (plain quantization's stored bits at the same width and
     * group rule); throws if exceeded, which would be a bug: the plan's costs are exact.
     */
    public void checkBudget(List<BlockResult> blocks) {
        if (lowRankOnly) return;
        long used = storedBits(blocks);
        if (used > plan.budgetBits)
            throw new IllegalStateException("casp: stored " + used + " bits, above the budget of " + plan.budgetBits);
    }

    /** The config with its casp object describing CASP: method, backend, tensor format, rank and allocation settings. */
    public QuantizationConfig annotate(QuantizationConfig config) {
        CaspPlan.Options o = plan.options;
        QuantizationConfig.CaspSettings settings = new QuantizationConfig.CaspSettings(o.aqlm() != null ? o.aqlm().codebookBits() : null,
                budgetRule(), o.rankRule().name().toLowerCase(Locale.ROOT), o.rankRatio(),
                lowRankOnly ? "none (low-rank only)" : o.allocation().cliName(), o.perLinear() ? "linear" : "layer", o.factorBits(),
                o.widthOfA(), o.rotate());
        String tensorFormat = backend.isQuip() ? "quip#" : backend.method().equals("aqlm") ? "aqlm" : "gptq-v1";
        return config.withCasp(config.casp().withBackend(backend.method()).withMethod("casp", tensorFormat, settings));
    }

    /** The casp section of casp-report.json: budget, plan, measurements, per-unit widths. */
    public ObjectNode report(List<BlockResult> blocks) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode r = json.createObjectNode();
        CaspPlan.Options o = plan.options;
        ObjectNode opts = r.putObject("options");
        opts.put("backend", o.backend());
        opts.put("bits", o.bits());
        opts.put("budget_rule", budgetRule());
        opts.put("rank_rule", o.rankRule().name().toLowerCase(Locale.ROOT));
        opts.put("rank_ratio", o.rankRatio());
        if (o.rankRule() == CaspPlan.RankRule.THRESHOLD) opts.put("rank_threshold", o.rankThreshold());
        opts.put("allocation", lowRankOnly ? "none" : o.allocation().cliName());
        opts.put("allocation_unit", o.perLinear() ? "linear" : "layer");
        opts.put("factor_bits", o.factorBits());
        opts.put("a_bits", o.widthOfA());
        opts.put("rotate", o.rotate());
        opts.put("refit_a", o.refitA());
        opts.put("low_rank_only", lowRankOnly);
        if (o.shareCodebooks()) opts.put("share_codebooks", true);
        long used = storedBits(blocks);
        ObjectNode budget = r.putObject("budget");
        budget.put("original_linear_weights", plan.originalWeights);
        budget.put("budget_bits", plan.budgetBits);
        budget.put("budget_effective_bits", plan.budgetEffectiveBits());
        budget.put("factor_bits", plan.factorBits);
        if (o.shareCodebooks()) budget.put("shared_codebook_bits", plan.sharedCodebookBits);
        budget.put("planned_bits", plan.plannedBits());
        budget.put("stored_bits", used);
        budget.put("effective_bits", (double) used / plan.originalWeights);
        budget.put("within_budget", used <= plan.budgetBits);
        budget.put("allocation_exact", plan.allocation.exact());
        ArrayNode ranks = r.putArray("low_rank");
        for (int l = 0; l < plan.layers; l++) {
            ObjectNode x = ranks.addObject();
            x.put("layer", l);
            x.put("q_rank", plan.qRank[l]);
            x.put("k_rank", plan.kRank[l]);
            if (o.aqlm() == null) { // aqlm: by shape, per factor (q_a_format, ... below)
                x.put("factor_quantizer_b", o.factorBits() == 0 ? "float32" : LowRankQuantizer.factorMethod(o.backend(), o.factorBits()));
                x.put("factor_quantizer_a", o.widthOfA() == 0 ? "float32" : LowRankQuantizer.factorMethod(o.backend(), o.widthOfA()));
            }
            if (!Double.isNaN(plan.qLoss[l])) x.put("q_truncation_loss_probe", plan.qLoss[l]);
            if (!Double.isNaN(plan.kLoss[l])) x.put("k_truncation_loss_probe", plan.kLoss[l]);
        }
        for (BlockResult b : blocks) {
            for (LinearResult lr : b.linears()) {
                if (lr.lowRank() == null) continue;
                ObjectNode x = (ObjectNode) ranks.get(lr.layer());
                String k = lr.name().endsWith("q_proj") ? "q" : "k";
                x.put(k + "_truncation_loss", lr.stats().getOrDefault("truncation_loss", Double.NaN).doubleValue());
                x.put(k + "_proxy_error", lr.proxyError());
                x.put(k + "_a_format", lr.lowRank().aFormat());
                x.put(k + "_b_format", lr.lowRank().bFormat());
            }
        }
        if (measured != null) {
            ArrayNode bi = r.putArray("block_influence");
            for (double v : measured.influence()) bi.add(v);
            if (measured.sparsity() != null) {
                ArrayNode sp = r.putArray("attention_sparsity");
                for (double[] heads : measured.sparsity()) {
                    ArrayNode h = sp.addArray();
                    for (double v : heads) h.add(v);
                }
            }
        }
        ArrayNode units = r.putArray("units");
        BitAllocation.Result a = plan.allocation;
        for (int u = 0; u < a.units().size(); u++) {
            BitAllocation.Unit unit = a.units().get(u);
            ObjectNode x = units.addObject();
            x.put("unit", unit.name());
            x.put("layer", unit.layer());
            x.put("bits", a.width(u));
            ArrayNode w = x.putArray("candidates"), c = x.putArray("cost_bits"), d = x.putArray("distortion");
            for (int i = 0; i < unit.choices(); i++) {
                w.add(unit.widths()[i]);
                c.add(unit.costBits()[i]);
                if (unit.distortion() != null) d.add(unit.distortion()[i]);
            }
        }
        r.put("summary", summary(blocks));
        return r;
    }

    /**
     * How the budget was set: "plain gptq 2-bit" (what plain quantization at the target stores), or
     * for QuIP# and AQLM "2 bits x weights" (the target itself; AQLM with --budget plain: "plain aqlm
     * 2-bit 2x8").
     */
    public String budgetRule() {
        CaspPlan.Options o = plan.options;
        if (o.aqlm() != null && o.plainBudget())
            return "plain aqlm " + o.bits() + "-bit " + CaspAqlm.codebooks(o.bits(), o.aqlm().codebookBits()) + "x" + o.aqlm().codebookBits();
        if (o.backend().equals("quip") && o.plainBudget()) return "plain quip " + o.bits() + "-bit";
        return o.backend().equals("quip") || o.aqlm() != null ? o.bits() + " bits x weights" : "plain " + o.backend() + " " + o.bits() + "-bit";
    }

    /** The human-readable summary printed after the compression table. */
    public String summary(List<BlockResult> blocks) {
        StringBuilder sb = new StringBuilder();
        long used = storedBits(blocks);
        CaspPlan.Options o = plan.options;
        sb.append(String.format(Locale.ROOT, "casp: %s %d-bit, rank rule %s (rho %.3g), allocation %s over %s units, factors B %d / A %d bits%s%n",
                o.backend(), o.bits(), o.rankRule().name().toLowerCase(Locale.ROOT), o.rankRatio(),
                lowRankOnly ? "none (low-rank only)" : o.allocation().cliName(), o.perLinear() ? "linear" : "layer",
                o.factorBits(), o.widthOfA(), o.rotate() ? ", rotated" : ""));
        sb.append(String.format(Locale.ROOT, "casp: ranks q %s, k %s%n", java.util.Arrays.toString(plan.qRank), java.util.Arrays.toString(plan.kRank)));
        if (!lowRankOnly) {
            sb.append(String.format(Locale.ROOT, "casp: stored %d bits = %.4f effective bits per original linear weight; budget (%s) %d bits = %.4f%s%n",
                    used, (double) used / plan.originalWeights, budgetRule(), plan.budgetBits, plan.budgetEffectiveBits(),
                    used <= plan.budgetBits ? "" : "  EXCEEDED"));
            if (o.backend().equals("quip") && (!LowRankQuantizer.factorMethod("quip", o.factorBits()).equals("quip#")
                    || !LowRankQuantizer.factorMethod("quip", o.widthOfA()).equals("quip#")))
                sb.append(String.format(Locale.ROOT, "casp: factors at widths QuIP# does not have (B %d / A %d bits) use per-channel GPTQ%n",
                        o.factorBits(), o.widthOfA()));
            if (o.aqlm() != null) {
                int gptq = 0, all = 0;
                for (BlockResult b : blocks) {
                    for (LinearResult r : b.linears()) {
                        if (r.lowRank() == null) continue;
                        all += 2;
                        if (r.lowRank().aFormat().equals("gptq-v1")) gptq++;
                        if (r.lowRank().bFormat().equals("gptq-v1")) gptq++;
                    }
                }
                int b = o.aqlm().codebookBits();
                sb.append(String.format(Locale.ROOT, "casp: aqlm widths %d -> %dx%d, %d -> %dx%d; %d of %d factors per-channel GPTQ (AQLM's "
                                + "codebooks would cost more there, or the width is not whole %d-bit codebooks)%n", o.bits(),
                        CaspAqlm.codebooks(o.bits(), b), b, o.bits() + 1, CaspAqlm.codebooks(o.bits() + 1, b), b, gptq, all, b));
                if (o.shareCodebooks())
                    sb.append(String.format(Locale.ROOT, "casp: aqlm codebooks shared across layers: %d sets (%d bits), each stored once "
                            + "with the first layer of its name and width%n", plan.sharedCodebookSets(), plan.sharedCodebookBits));
            }
            BitAllocation.Result a = plan.allocation;
            int wide = 0;
            StringBuilder list = new StringBuilder();
            for (int u = 0; u < a.units().size(); u++) {
                if (a.width(u) > o.bits()) {
                    wide++;
                    if (list.length() > 0) list.append(", ");
                    list.append(a.units().get(u).name());
                }
            }
            sb.append(String.format(Locale.ROOT, "casp: %d of %d units at %d bits%s%n", wide, a.units().size(), o.bits() + 1,
                    wide == 0 ? "" : ": " + list));
        }
        return sb.toString();
    }


    /** The options as JSON (the checkpoint's argument check). */
    public static ObjectNode optionsJson(CaspPlan.Options o, boolean lowRankOnly) {
        ObjectNode j = new ObjectMapper().createObjectNode();
        j.put("bits", o.bits());
        j.put("rank_rule", o.rankRule().name());
        j.put("rank_ratio", o.rankRatio());
        j.put("rank_threshold", o.rankThreshold());
        j.put("allocation", o.allocation().cliName());
        j.put("per_linear", o.perLinear());
        j.put("factor_bits", o.factorBits());
        j.put("a_bits", o.aBits());
        j.put("rotate", o.rotate());
        j.put("refit_a", o.refitA());
        j.put("low_rank_only", lowRankOnly);
        if (o.plainBudget()) j.put("plain_budget", true);
        if (o.shareCodebooks()) j.put("share_codebooks", true);
        return j;
    }
}
