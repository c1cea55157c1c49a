package casp.cli;

import casp.compress.BitAllocation;
import casp.compress.CaspPlan;
import casp.compress.CompressionOptions;
import casp.compress.CompressionReport;
import casp.compress.CompressionRun;
import casp.compress.SequentialCompressor;
import casp.io.BadInputException;
import casp.report.Charts;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp compress`: sequential RTN / GPTQ / QuIP# / AQLM quantization of a model's decoder linears, written as a
 * GPTQ-format (or QuIP#- or AQLM-format) folder with casp-report.json (see casp.compress.CompressionRun).
 */
@Command(name = "compress", mixinStandardHelpOptions = true,
        description = "Quantize the decoder's linear layers (RTN, GPTQ, QuIP# or AQLM) block by block on calibration data and "
                + "write a compressed model folder (GPTQ v1 tensors, QuIP# codes or AQLM codebooks, quantization_config, casp-report.json).")
public final class CompressCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder")
    Path model;

    @Option(names = "--calib", required = true, paramLabel = "FILE",
            description = "calibration data: a UTF-8 text file (random windows of --seq-len tokens), or for a LLaVA model "
                    + "a LLaVA conversation JSON (*.json) with images")
    Path calib;

    @Option(names = "--images", paramLabel = "DIR",
            description = "images of a LLaVA calibration JSON (default: images/ beside the JSON)")
    Path images;

    @Mixin
    VideoFramesOption frames;

    @Option(names = "--method", required = true, paramLabel = "rtn|gptq|quip|aqlm|casp",
            description = "quantizer; quip = QuIP# (E8P12 lattice codebook with incoherence processing and BlockLDLQ, "
                    + "--bits 2, or 3 / 4 with residual VQ, ALGORITHMS.md 7); aqlm = additive codebooks (ALGORITHMS.md 8); "
                    + "casp = low-rank Q/K + bit allocation + the --backend quantizer (ALGORITHMS.md 1, 3, 5)")
    String method;

    // aqlm options (--method aqlm)
    @Option(names = "--codebook-bits", paramLabel = "B", defaultValue = "8",
            description = "aqlm: bits per codebook index, 2^B codewords of 8 weights (default ${DEFAULT-VALUE}; at most "
                    + casp.quant.aqlm.Aqlm.MAX_CODEBOOK_BITS + ")")
    int codebookBits;

    @Option(names = "--codebooks", paramLabel = "M",
            description = "aqlm: number of codebooks (default: --bits x 8 / --codebook-bits, e.g. 2 for 2 bits with 8-bit codebooks)")
    Integer codebooks;

    @Option(names = "--beam", paramLabel = "W", defaultValue = "4", description = "aqlm: beam width of the code search (default ${DEFAULT-VALUE})")
    int beam;

    @Option(names = "--aqlm-iters", paramLabel = "N", defaultValue = "6",
            description = "aqlm: rounds of code search + codebook/scale solve (default ${DEFAULT-VALUE})")
    int aqlmIters;

    @Option(names = "--joint-limit", paramLabel = "N", defaultValue = "4096",
            description = "aqlm: solve all codebooks in one least-squares system when codebooks x 2^B x 8 <= N, else one "
                    + "codebook at a time (2x8 has 4096 unknowns; default ${DEFAULT-VALUE})")
    int jointLimit;

    @Option(names = "--kmeans-iters", paramLabel = "N", defaultValue = "10",
            description = "aqlm: Lloyd iterations of the residual k-means initialisation (default ${DEFAULT-VALUE})")
    int kmeansIters;

    // casp options (--method casp)
    @Option(names = "--backend", paramLabel = "gptq|rtn|quip|aqlm", defaultValue = "gptq",
            description = "casp: quantizer of the linears and factors; quip = QuIP# at the allocated 2 / 3 / 4 bits, factors "
                    + "included (a factor width QuIP# lacks, 8, keeps per-channel GPTQ), budget = --bits x weights; "
                    + "aqlm = AQLM at the allocated width w as 8 w / --codebook-bits codebooks (candidates {2,3} bits: "
                    + "2x8 / 3x8 at the default 8-bit codebooks, 8x2 / 12x2 at --codebook-bits 2, 4x4 / 6x4 at 4), codebooks and "
                    + "scales counted; a factor is AQLM unless AQLM stores more than per-channel GPTQ there (small factors); "
                    + "budget: see --budget. Default ${DEFAULT-VALUE}")
    String backend;

    @Option(names = "--budget", paramLabel = "target|plain",
            description = "casp --backend aqlm or quip: target = --bits x weights (the default; refused with exit 2 when AQLM's codebooks "
                    + "and scales cannot fit it, as on stories260K); plain = what plain AQLM at --bits with the same codebooks "
                    + "stores (equal storage to --method aqlm); --backend quip likewise: target = --bits x weights (the default), "
                    + "plain = what QuIP# alone stores at --bits (codes, signs, scales: equal storage to --method quip)")
    String budget;

    @Option(names = "--share-codebooks", description = "casp --backend aqlm: the linears of one name (v_proj, ..., down_proj) at one "
            + "width share one codebook set, fitted and stored by the first layer with that width; the later layers store codes, scales "
            + "and the index of that layer (the bits saved go to wider linears). Such a run cannot be resumed from its checkpoint")
    boolean shareCodebooks;

    @Option(names = "--rank-ratio", paramLabel = "R",
            description = "casp: fraction rho of q/k parameters kept, r = floor(m n rho / (m + n)) (default 0.25; 0.5 with "
                    + "--backend aqlm, where wider factors won on every calibration seed of the test models)")
    Double rankRatio;

    @Option(names = "--rank-rule", paramLabel = "ratio|threshold|budget|sparsity", defaultValue = "ratio",
            description = "casp: ratio = the paper's rank in every layer; threshold = per layer, the smallest rank whose whitened "
                    + "truncation loss is below --rank-threshold; budget = the ratio rule's total rank split over the layers "
                    + "to minimise the total loss; sparsity = that split with each layer's loss weighted by its attention density "
                    + "1 - sparsity (tau 0.01) on the calibration data (default ${DEFAULT-VALUE})")
    String rankRule;

    @Option(names = "--rank-threshold", paramLabel = "T", defaultValue = "0.05",
            description = "casp: relative truncation loss of the threshold rule (default ${DEFAULT-VALUE})")
    double rankThreshold;

    @Option(names = "--allocation", paramLabel = "MODE", defaultValue = "measured",
            description = "casp: uniform | paper (first and last layers wider) | closed-form (reverse water-filling) | "
                    + "measured (importance-weighted proxy distortion, exact knapsack) (default ${DEFAULT-VALUE})")
    String allocation;

    @Option(names = "--allocation-unit", paramLabel = "layer|linear", defaultValue = "linear",
            description = "casp: allocate per decoder layer or per single linear (default ${DEFAULT-VALUE})")
    String allocationUnit;

    @Option(names = "--factor-bits", paramLabel = "B", defaultValue = "3",
            description = "casp: bits of the low-rank factors, per output channel; 0 keeps them float32 (default ${DEFAULT-VALUE})")
    int factorBits;

    @Option(names = "--a-bits", paramLabel = "B", description = "casp: bits of factor A (default: --factor-bits)")
    Integer aBits;

    @Option(names = "--rotate", description = "casp: random orthogonal rotation of the rank dimension before quantizing the factors")
    boolean rotate;

    @Option(names = "--refit-a", description = "casp: least-squares refit of factor A to the quantized B")
    boolean refitA;

    @Option(names = "--no-low-rank", description = "casp: keep q/k as ordinary linears of the backend: the bit allocation (and "
            + "--share-codebooks) without the low-rank step, to measure what that step adds")
    boolean noLowRank;

    @Option(names = "--lowrank-only", description = "casp: only replace q/k by low-rank factors; every other linear stays float32")
    boolean lowRankOnly;

    @Option(names = "--bits", required = true, paramLabel = "B", description = "bits per weight: 2, 3, 4 or 8 (aqlm: also 1; the codes' bits, codebooks and scales come on top)")
    int bits;

    @Option(names = "--group-size", paramLabel = "G",
            description = "inputs per scale/zero group; -1 for one per output channel (default: 128, or the largest "
                    + "divisor of the input width below 128 when 128 does not divide it)")
    Integer groupSize;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "128", description = "calibration samples (default ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--seq-len", paramLabel = "L",
            description = "tokens per calibration sample (default: min(2048, the model's max positions)); for LLaVA "
                    + "conversations the text tokens kept besides the image tokens (default 256)")
    Integer seqLen;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "seed of the calibration windows (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--act-order", description = "GPTQ: quantize columns by descending Hessian diagonal (static groups)")
    boolean actOrder;

    @Option(names = "--sym", description = "symmetric grid (default asymmetric)")
    boolean sym;

    @Option(names = "--true-sequential", arity = "1", paramLabel = "true|false", defaultValue = "true",
            description = "collect each input group's statistics after the earlier groups of the block are quantized "
                    + "(default ${DEFAULT-VALUE})")
    boolean trueSequential;

    @Option(names = "--damp", paramLabel = "F", defaultValue = "0.01", description = "GPTQ damping, fraction of mean diag(H) (default ${DEFAULT-VALUE})")
    double damp;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output folder (must not exist unless --force)")
    Path out;

    @Option(names = "--force", description = "replace an existing --out (and discard a checkpoint of an interrupted run)")
    boolean force;

    @Option(names = "--resume", description = "continue an interrupted run from its checkpoint OUT.partial")
    boolean resume;

    @Option(names = "--checkpoint", arity = "1", paramLabel = "true|false", defaultValue = "true",
            description = "save a checkpoint in OUT.partial after each block, for --resume (default ${DEFAULT-VALUE})")
    boolean checkpoint;

    @Option(names = "--activation-dtype", paramLabel = "f32|bf16", defaultValue = "f32",
            description = "element type of the calibration activations kept between blocks (bf16: half the memory; "
                    + "default ${DEFAULT-VALUE})")
    String activationDtype;

    @Option(names = "--max-memory", paramLabel = "SIZE",
            description = "memory the run may use, e.g. 12g: calibration activations beyond what fits beside the model and one "
                    + "block spill to a scratch file next to --out (default: the JVM's max heap or the machine's memory, the smaller)")
    String maxMemory;

    @Option(names = "--max-blocks", paramLabel = "N",
            description = "stop cleanly after N blocks, keeping the checkpoint OUT.partial (with casp-report.json: per-stage "
                    + "seconds and the projected total); continue with --resume")
    Integer maxBlocks;

    @Option(names = "--max-measured-layers", paramLabel = "N",
            description = "casp: stop cleanly after measuring N layers of the uncompressed model (the measurement before the first "
                    + "block, hours on a 7B model), keeping the layers measured in the checkpoint OUT.partial; continue with --resume")
    Integer maxMeasuredLayers;

    @Option(names = "--json", description = "print one JSON object: effective_bits, seconds, out, ...")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (!java.util.List.of("rtn", "gptq", "quip", "aqlm", "casp").contains(method))
            throw new BadInputException("--method must be rtn, gptq, quip, aqlm or casp, got '" + method + "'");
        casp.io.ModelFolder folder = casp.io.ModelFolder.open(model);
        int maxPos = folder.config().text().maxPositions();
        boolean llava = Files.isRegularFile(calib) && CompressionRun.isLlavaCalibration(folder, calib);
        int len = seqLen != null ? seqLen : llava ? 256 : Math.min(2048, maxPos);
        if (!llava && len > maxPos) throw new BadInputException("--seq-len " + len + " exceeds the model's max_position_embeddings " + maxPos);
        if (groupSize != null && groupSize == 0) throw new BadInputException("--group-size must be positive or -1 (per channel), got 0");
        boolean casp = method.equals("casp");
        CaspPlan.Options caspOptions = casp ? caspOptions() : null;
        CompressionOptions opt = new CompressionOptions(casp ? backend : method, bits, groupSize == null ? CompressionOptions.AUTO_GROUP : groupSize,
                actOrder, sym, trueSequential, samples, len, seed, damp, method.equals("aqlm") ? aqlmOptions() : caspOptions == null ? null
                : caspOptions.aqlm());
        CompressionRun.Limits limits = limits();
        CompressionRun.Outcome o;
        Progress[] bar = new Progress[1];
        try {
            o = CompressionRun.run(new CompressionRun.Request(model, calib, images, opt, out, force, resume, checkpoint, caspOptions, lowRankOnly, limits,
                            frames.frames),
                    new SequentialCompressor.Listener() {
                        @Override
                        public void blockStarted(int layer, int layers) {
                            if (bar[0] == null) // a resumed run counts only the blocks left (rate and ETA stay right)
                                bar[0] = new Progress(layer == 0 ? "compress" : "compress (resumed at block " + layer + ")",
                                        maxBlocks == null ? layers - layer : Math.min(maxBlocks, layers - layer), "blocks");
                        }

                        @Override
                        public void blockDone(SequentialCompressor.BlockResult b, casp.compress.Calibration a) {
                            bar[0].advance(1);
                        }
                    }, System.err);
        } finally {
            if (bar[0] != null) bar[0].close();
        }
        if (o.report().has("stopped_after_measured_layers")) { // --max-measured-layers: no block compressed yet
            ObjectMapper m = new ObjectMapper();
            if (json) {
                ObjectNode j = o.report().deepCopy();
                j.put("out", o.out().toString());
                j.put("complete", false);
                System.out.println(m.writeValueAsString(j));
            } else {
                System.out.printf(Locale.ROOT, "measured %d of %d layers in %.1f s: checkpoint in %s; continue with --resume%n",
                        o.report().get("stopped_after_measured_layers").asInt(), o.report().get("layers").asInt(), o.seconds(), o.out());
            }
            return 0;
        }
        if (casp) Charts.bitAllocation(o.blocks(), model, o.out().resolve(Charts.BIT_ALLOCATION));
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode j = m.createObjectNode();
            j.put("out", o.out().toString());
            j.put("effective_bits", o.effectiveBits());
            j.put("seconds", o.seconds());
            j.put("method", method);
            if (o.report().has("casp")) {
                j.put("backend", backend);
                j.set("casp_budget", o.report().get("casp").get("budget"));
            }
            j.put("bits", bits);
            j.put("linear_weights", CompressionReport.weights(o.blocks()));
            j.put("model_bytes", o.outputBytes());
            j.put("activation_bytes", o.activationBytes());
            j.put("peak_heap_bytes", o.peakHeapBytes());
            j.put("peak_rss_bytes", o.peakRssBytes());
            j.put("activation_spilled_bytes", o.spilledBytes());
            j.put("complete", o.complete());
            if (o.resumedFromBlock() > 0) j.put("resumed_from_block", o.resumedFromBlock());
            j.set("cost", o.report().get("cost"));
            System.out.println(m.writeValueAsString(j));
        } else {
            System.out.print(CompressionReport.table(o.blocks(), o.seconds(), o.peakHeapBytes(), o.peakRssBytes(), o.activationBytes()));
            if (o.report().has("casp")) System.out.print(o.report().get("casp").get("summary").asText());
            System.out.printf(Locale.ROOT, "projected time for all %d blocks: %.2f h%n", o.report().get("cost").get("layers").asInt(),
                    o.report().get("cost").get("projected_total_hours").asDouble());
            if (!o.complete())
                System.out.printf(Locale.ROOT, "stopped after %d blocks: checkpoint and casp-report.json in %s; continue with --resume%n",
                        o.blocks().size(), o.out());
            else
                System.out.printf(Locale.ROOT, "wrote %s (%s of weights; report in casp-report.json)%n", o.out(),
                        String.format(Locale.ROOT, "%.1f MiB", o.outputBytes() / 1048576.0));
        }
        return 0;
    }

    /** The resource limits from the flags. */
    private CompressionRun.Limits limits() {
        casp.tensor.DType dtype = switch (activationDtype.toLowerCase(Locale.ROOT)) {
            case "f32", "float32" -> casp.tensor.DType.F32;
            case "bf16", "bfloat16" -> casp.tensor.DType.BF16;
            default -> throw new BadInputException("--activation-dtype must be f32 or bf16, got '" + activationDtype + "'");
        };
        if (maxBlocks != null && maxBlocks < 1) throw new BadInputException("--max-blocks must be >= 1, got " + maxBlocks);
        if (maxBlocks != null && !checkpoint) throw new BadInputException("--max-blocks needs the checkpoint (--checkpoint true) to resume from");
        if (maxMeasuredLayers != null && maxMeasuredLayers < 1)
            throw new BadInputException("--max-measured-layers must be >= 1, got " + maxMeasuredLayers);
        if (maxMeasuredLayers != null && !method.equals("casp")) throw new BadInputException("--max-measured-layers needs --method casp");
        if (maxMeasuredLayers != null && !checkpoint)
            throw new BadInputException("--max-measured-layers needs the checkpoint (--checkpoint true) to resume from");
        long mem = maxMemory == null ? 0 : casp.compress.MemoryBudget.parse(maxMemory, "--max-memory");
        return new CompressionRun.Limits(dtype, mem, maxBlocks == null ? 0 : maxBlocks, maxMeasuredLayers == null ? 0 : maxMeasuredLayers);
    }

    /** The AQLM settings from the flags; bad values are user errors naming the flag. */
    private casp.quant.aqlm.Aqlm.Options aqlmOptions() {
        if (codebookBits < 1 || codebookBits > casp.quant.aqlm.Aqlm.MAX_CODEBOOK_BITS)
            throw new BadInputException("--codebook-bits must be 1.." + casp.quant.aqlm.Aqlm.MAX_CODEBOOK_BITS + ", got " + codebookBits
                    + (codebookBits == 16 ? " (1x16 codebooks are readable by the runtime but too costly for this CPU quantizer: "
                    + "65536 codewords scored per group and a 524288-unknown codebook solve)" : ""));
        if (groupSize != null || actOrder || sym)
            throw new BadInputException("--group-size, --act-order and --sym do not apply to --method aqlm or --backend aqlm (groups of 8 "
                    + "inputs, codebooks)");
        int m = codebooks != null ? codebooks : bits * 8 / codebookBits;
        if (codebooks == null && bits * 8 % codebookBits != 0)
            throw new BadInputException("--bits " + bits + " is not a whole number of --codebook-bits " + codebookBits + " codebooks; give --codebooks");
        if (m * codebookBits != bits * 8)
            throw new BadInputException("--codebooks " + m + " x --codebook-bits " + codebookBits + " is " + (m * codebookBits / 8.0)
                    + " bits per weight, not --bits " + bits);
        if (m < 1 || m > 16) throw new BadInputException("--codebooks must be 1..16, got " + m);
        if (beam < 1 || beam > 64) throw new BadInputException("--beam must be 1..64, got " + beam);
        if (aqlmIters < 0) throw new BadInputException("--aqlm-iters must be >= 0, got " + aqlmIters);
        if (kmeansIters < 0) throw new BadInputException("--kmeans-iters must be >= 0, got " + kmeansIters);
        if (jointLimit < 0) throw new BadInputException("--joint-limit must be >= 0, got " + jointLimit);
        return casp.quant.aqlm.Aqlm.Options.defaults(bits).withCodebooks(m, codebookBits).withBeamWidth(beam)
                .withIterations(aqlmIters).withKmeansIterations(kmeansIters).withJointLimit(jointLimit).withSeed(seed);
    }

    /** The CASP settings from the flags; bad values are user errors naming the flag. */
    private CaspPlan.Options caspOptions() {
        if (!backend.equals("gptq") && !backend.equals("rtn") && !backend.equals("quip") && !backend.equals("aqlm"))
            throw new BadInputException("--backend must be gptq, rtn, quip or aqlm, got '" + backend + "'");
        if (backend.equals("quip") && (groupSize != null || actOrder || sym))
            throw new BadInputException("--group-size, --act-order and --sym do not apply to --backend quip (E8P12 codes, one scale per linear)");
        if (bits != 2 && bits != 3) throw new BadInputException("--method casp supports --bits 2 or 3 (candidates {2,3} / {3,4}), got " + bits);
        if (budget != null && !backend.equals("aqlm") && !backend.equals("quip"))
            throw new BadInputException("--budget applies to --backend aqlm and quip only (gptq and rtn: plain quantization's bits)");
        if (budget != null && !budget.equals("target") && !budget.equals("plain"))
            throw new BadInputException("--budget must be target or plain, got '" + budget + "'");
        casp.quant.aqlm.Aqlm.Options aqlm = null;
        if (backend.equals("aqlm")) {
            if (codebooks != null)
                throw new BadInputException("--codebooks does not apply to --backend aqlm: each linear's width sets its codebook count "
                        + "(8 x bits / --codebook-bits)");
            for (int w : new int[]{bits, bits + 1}) {
                if (!casp.compress.CaspAqlm.available(w, codebookBits))
                    throw new BadInputException("--codebook-bits " + codebookBits + " with --backend aqlm: the candidate width " + w
                            + " is not a whole number of 1..16 codebooks (8 x " + w + " / " + codebookBits + "); use 2, 4 or 8");
            }
            aqlm = aqlmOptions();
        }
        double rho = rankRatio != null ? rankRatio : backend.equals("aqlm") ? 0.5 : 0.25;
        if (!(rho > 0 && rho <= 1)) throw new BadInputException("--rank-ratio must be in (0, 1], got " + rankRatio);
        if (!(rankThreshold > 0 && rankThreshold < 1)) throw new BadInputException("--rank-threshold must be in (0, 1), got " + rankThreshold);
        for (int b : new int[]{factorBits, aBits == null ? factorBits : aBits}) {
            if (b != 0 && b != 2 && b != 3 && b != 4 && b != 8)
                throw new BadInputException("--factor-bits / --a-bits must be 0 (float32), 2, 3, 4 or 8, got " + b);
        }
        if (aBits != null && (aBits == 0) != (factorBits == 0))
            throw new BadInputException("--a-bits " + aBits + " with --factor-bits " + factorBits + ": both factors are float32 or both quantized");
        if (!allocationUnit.equals("layer") && !allocationUnit.equals("linear"))
            throw new BadInputException("--allocation-unit must be layer or linear, got '" + allocationUnit + "'");
        CaspPlan.RankRule rule;
        BitAllocation.Mode mode;
        try {
            rule = CaspPlan.RankRule.parse(rankRule);
            mode = BitAllocation.Mode.parse(allocation);
        } catch (IllegalArgumentException e) {
            throw new BadInputException((e.getMessage().contains("rank") ? "--rank-rule: " : "--allocation: ") + e.getMessage());
        }
        if (factorBits == 0 && !lowRankOnly)
            throw new BadInputException("--factor-bits 0 (float32 factors) is only for --lowrank-only: float factors do not fit a bit budget");
        if (noLowRank && lowRankOnly) throw new BadInputException("--no-low-rank and --lowrank-only exclude each other");
        if (shareCodebooks && !backend.equals("aqlm")) throw new BadInputException("--share-codebooks applies to --backend aqlm only");
        if (shareCodebooks && resume)
            throw new BadInputException("--share-codebooks runs cannot be resumed (a block's checkpoint lacks the codebooks it shares); "
                    + "start again without --resume");
        return new CaspPlan.Options(backend, bits, rule, rho, rankThreshold, mode, allocationUnit.equals("linear"), factorBits,
                aBits == null ? 0 : aBits, rotate, refitA, !noLowRank, aqlm, "plain".equals(budget), shareCodebooks);
    }
}
