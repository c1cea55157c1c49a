package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.ChatTemplate;
import casp.io.IoMessages;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import casp.model.LlavaImageEncoder;
import casp.model.LlavaModel;
import casp.quant.QuantizationConfig;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One `casp compress` run end to end: check the target, load the model, build the calibration
 * set (or resume from a checkpoint), compress block by block with a checkpoint after each block,
 * write the compressed folder atomically with its report, remove the checkpoint.
 *
 * <p>Memory stays bounded: the decoder's weights are read one block at a time
 * ({@link BlockWeights}); the calibration activations are float32 or bfloat16 and spill to a
 * scratch folder beside the output ({@code .NAME.activations-PID}, removed at the end) beyond the
 * {@link MemoryBudget}. A run may stop after some blocks ({@link Limits#maxBlocks}), leaving its
 * checkpoint and report in OUT.partial, and be continued with resume.
 */
public final class CompressionRun {
    private CompressionRun() {}

    /**
     * What to do.
     *
     * @param images     LLaVA calibration images folder, or null
     * @param checkpoint keep a block-level checkpoint in OUT.partial (needed for resume)
     * @param casp       CASP settings (--method casp; options then name the backend), or null
     * @param lowRankOnly casp: compress only q/k (to low-rank factors), keep the rest float32
     * @param frames     frames sampled from each video calibration record (0: the processor config's)
     */
    public record Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                          boolean resume, boolean checkpoint, CaspPlan.Options casp, boolean lowRankOnly, Limits limits,
                          int frames) {
        /** A request that samples the processor config's number of frames from videos. */
        public Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                       boolean resume, boolean checkpoint, CaspPlan.Options casp, boolean lowRankOnly, Limits limits) {
            this(model, calib, images, options, out, force, resume, checkpoint, casp, lowRankOnly, limits, 0);
        }

        /** A plain (non-CASP) request. */
        public Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                       boolean resume, boolean checkpoint) {
            this(model, calib, images, options, out, force, resume, checkpoint, null, false);
        }

        /** A request with the default limits. */
        public Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                       boolean resume, boolean checkpoint, CaspPlan.Options casp, boolean lowRankOnly) {
            this(model, calib, images, options, out, force, resume, checkpoint, casp, lowRankOnly, Limits.defaults());
        }
    }

    /**
     * Resource limits.
     *
     * @param activationDtype F32 or BF16 calibration activations
     * @param maxMemoryBytes  the run's memory limit (0: max heap / physical memory, see {@link MemoryBudget})
     * @param maxBlocks       stop after this many blocks of this run, with a checkpoint (0: run to the end)
     * @param maxMeasuredLayers CASP: stop after measuring this many layers of the uncompressed model in
     *                        this run, with a checkpoint (0: measure them all)
     */
    public record Limits(DType activationDtype, long maxMemoryBytes, int maxBlocks, int maxMeasuredLayers) {
        public Limits {
            if (activationDtype != DType.F32 && activationDtype != DType.BF16)
                throw new BadInputException("--activation-dtype must be f32 or bf16, got " + activationDtype);
            if (maxMemoryBytes < 0) throw new BadInputException("--max-memory must be positive, got " + maxMemoryBytes);
            if (maxBlocks < 0) throw new BadInputException("--max-blocks must be >= 1, got " + maxBlocks);
            if (maxMeasuredLayers < 0) throw new BadInputException("--max-measured-layers must be >= 1, got " + maxMeasuredLayers);
        }

        public Limits(DType activationDtype, long maxMemoryBytes, int maxBlocks) {
            this(activationDtype, maxMemoryBytes, maxBlocks, 0);
        }

        public static Limits defaults() {
            return new Limits(DType.F32, 0, 0, 0);
        }
    }

    /**
     * What was done. When the run stopped at --max-blocks, complete is false, out is the checkpoint
     * folder (holding casp-report.json) and outputBytes is 0.
     */
    public record Outcome(Path out, double effectiveBits, double seconds, List<BlockResult> blocks, ObjectNode report,
                          long outputBytes, long activationBytes, long peakHeapBytes, long peakRssBytes,
                          int resumedFromBlock, boolean complete, long spilledBytes) {}

    /** The checked inputs of a run: the output path, the source folder, the calibration kind and images. */
    private record Inputs(Path out, ModelFolder folder, boolean llavaCalib, Path images) {}

    /**
     * Runs the request. listener (may be null) sees every block and linear; log gets one-line notes
     * (resuming, checkpoint removed). User errors are {@link BadInputException}s.
     */
    public static Outcome run(Request req, SequentialCompressor.Listener listener, PrintStream log) throws IOException {
        Path out = req.out().toAbsolutePath().normalize();
        CompressedModelWriter.checkTarget(out, req.force());
        OutputTarget.check("--out", out, "--model", req.model());
        try (OutputLock lock = OutputLock.acquire(out)) {
            return runLocked(req, listener, log);
        }
    }

    private static Outcome runLocked(Request req, SequentialCompressor.Listener listener, PrintStream log) throws IOException {
        long t0 = System.nanoTime();
        Inputs in = checkInputs(req);
        CompressionOptions opt = req.options();
        ObjectNode args = arguments(req, in.images());
        Path cpDir = Checkpoint.dirFor(in.out());
        Checkpoint cp = resumeOrClear(req, cpDir, args, log);

        Limits limits = req.limits();
        Path scratch = scratchDir(in.out());
        Calibration calib = null;
        try (PeakMemory mem = PeakMemory.start()) {
            // Only the language model is compressed; a LLaVA model's vision tower and projector are
            // used to build the calibration inputs and are copied unchanged. The decoder's weights
            // are read block by block.
            BlockWeights.Loaded loaded = BlockWeights.loadModel(in.folder());
            LlamaModel model = loaded.model();
            BlockWeights weights = loaded.weights();
            weights.checkAll(model); // damaged weights are refused here, before any work
            LlavaModel llava = in.llavaCalib() ? new LlavaModel(in.folder(), model, LlavaImageEncoder.load(in.folder()),
                    Tokenizer.load(in.folder().dir()), ChatTemplate.load(in.folder().dir())) : null;
            if (llava != null) llava.setFramesPerVideo(req.frames());
            int first = cp == null ? 0 : cp.completedBlocks();
            if (first > model.numLayers())
                throw new BadInputException(cpDir + ": checkpoint has " + first + " blocks, the model " + model.numLayers());
            int end = limits.maxBlocks() == 0 ? model.numLayers() : Math.min(model.numLayers(), first + limits.maxBlocks());

            long limit = MemoryBudget.limit(limits.maxMemoryBytes());
            long budget = MemoryBudget.activationBudget(limit, MemoryBudget.residentHeap(),
                    MemoryBudget.blockWorkingSet(model.config(), maxTokens(opt, llava, model)));
            ActivationStore.Settings storage = new ActivationStore.Settings(limits.activationDtype(), budget, scratch.resolve("calibration.bin"));
            CompressionCost cost = new CompressionCost(model.numLayers());

            long c0 = System.nanoTime();
            calib = first > 0 ? cp.activations(model.hiddenSize(), storage) : calibration(req, in, llava, model, storage);
            cost.calibration((System.nanoTime() - c0) / 1e9, calib.visionSeconds(), calib.images());
            long activationBytes = calib.bytes();
            Checkpoint[] held = {cp};
            CaspCompression casp;
            try {
                casp = prepareCasp(req, in, held, cpDir, args, first, calib, model, llava, weights, scratch, cost, log);
            } catch (AllocationProbe.Stopped stop) { // --max-measured-layers: the checkpoint holds the layers measured
                ObjectNode report = new ObjectMapper().createObjectNode();
                report.put("stopped_after_measured_layers", stop.layersDone());
                report.put("layers", stop.layers());
                report.put("seconds", (System.nanoTime() - t0) / 1e9);
                report.put("peak_rss_bytes", PeakMemory.peakRssBytes());
                Files.write(cpDir.resolve("casp-report.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
                log.println("casp: stopped after measuring " + stop.layersDone() + " of " + stop.layers()
                        + " layers (--max-measured-layers); continue with --resume");
                return new Outcome(cpDir, 0, (System.nanoTime() - t0) / 1e9, List.of(), report, 0, activationBytes,
                        mem.peakHeapBytes(), PeakMemory.peakRssBytes(), 0, false, calib.store().spilledBytes());
            }
            cp = held[0];
            llava = null; // the vision tower is not needed any more
            SequentialCompressor.QuantizerPlan plan = casp != null ? casp.quantizerPlan() : opt.plan(model);
            // Created only now (unless the measurement kept its layers), so that a user error above (a short
            // text, a bad model, a plan over the budget) leaves no checkpoint.
            if (cp == null && (req.checkpoint() || end < model.numLayers())) cp = Checkpoint.create(cpDir, args);
            if (cp != null && casp != null && MeasurementsFile.keepable(casp.measurements()) && !cp.hasMeasurements())
                cp.saveMeasurements(casp.measurements());

            List<BlockResult> blocks = new ArrayList<>(cp == null ? List.of() : cp.blocks());
            compressBlocks(model, weights, plan, opt, calib, first, end, cp, mem, cost, blocks, listener, log);
            boolean complete = end == model.numLayers();
            if (casp != null && complete) casp.checkBudget(blocks);

            mem.sample();
            double seconds = (System.nanoTime() - t0) / 1e9;
            long peakRss = PeakMemory.peakRssBytes();
            long spilled = calib.store().spilledBytes();
            ObjectNode report = CompressionReport.build(req.model().toString(),
                    calibrationJson(req, in, calib, activationBytes, limits, budget, limit), opt.toJson(), blocks, seconds,
                    mem.peakHeapBytes(), peakRss, activationBytes, first);
            report.set("cost", cost.json(blocks, peakRss, mem.peakHeapBytes()));
            if (!complete) { // --max-blocks: the checkpoint holds the blocks done; the report goes beside it
                report.put("stopped_after_block", end - 1);
                Path r = cpDir.resolve("casp-report.json");
                Files.write(r, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
                log.println("casp: stopped after block " + end + " of " + model.numLayers() + " (--max-blocks); continue with --resume");
                return new Outcome(cpDir, CompressionReport.effectiveBits(blocks), seconds, blocks, report, 0, activationBytes,
                        mem.peakHeapBytes(), peakRss, first, false, spilled);
            }
            List<LinearResult> all = new ArrayList<>();
            for (BlockResult b : blocks) all.addAll(b.linears());
            QuantizationConfig qconfig = CompressedModelWriter.quantizationConfig(in.folder(), opt, all);
            if (casp != null) {
                report.set("casp", casp.report(blocks));
                qconfig = casp.annotate(qconfig);
            }
            long bytes;
            try {
                bytes = CompressedModelWriter.write(in.folder(), all, qconfig, report, in.out(), req.force());
            } catch (IOException e) {
                throw new BadInputException("--out " + in.out() + ": cannot write the compressed model: " + IoMessages.describe(e), e);
            }
            if (cp != null) cp.delete();
            return new Outcome(in.out(), CompressionReport.effectiveBits(blocks), seconds, blocks, report, bytes, activationBytes,
                    mem.peakHeapBytes(), peakRss, first, true, spilled);
        } finally {
            if (calib != null) calib.close();
            CompressedModelWriter.deleteTree(scratch);
        }
    }

    /** The scratch folder the activations spill to: .NAME.activations-PID beside the output. */
    private static Path scratchDir(Path out) {
        return out.resolveSibling("." + out.getFileName() + ".activations-" + ProcessHandle.current().pid());
    }

    /**
     * The longest calibration sequence, for the block working set: the text windows, plus one
     * image's tokens for LLaVA-1.5; LLaVA-NeXT's image and video token counts depend on the input,
     * so its bound is the model's positions.
     */
    private static int maxTokens(CompressionOptions opt, LlavaModel llava, LlamaModel model) {
        if (llava == null) return opt.seqLen();
        if (llava.next() == null) return opt.seqLen() + llava.vision().tokensPerImage(); // one image per conversation
        return Math.max(opt.seqLen(), model.config().maxPositions());
    }

    /**
     * casp: the plan rests on measurements of the uncompressed model: kept in the checkpoint, or
     * (when the checkpoint could not keep them) measured again on rebuilt calibration inputs.
     * Null without --method casp.
     */
    private static CaspCompression prepareCasp(Request req, Inputs in, Checkpoint[] held, Path cpDir, ObjectNode args, int first,
                                               Calibration calib, LlamaModel model, LlavaModel llava, BlockWeights weights,
                                               Path scratch, CompressionCost cost, PrintStream log) {
        if (req.casp() == null) return null;
        Checkpoint cp = held[0];
        AllocationProbe.Measurements saved = cp == null ? null : cp.measurements();
        Calibration probe = first == 0 || saved != null ? calib
                : calibration(req, in, llava, model, calib.store().besideThis(scratch.resolve("probe-inputs.bin")));
        // The measurement (hours on a 7B model) keeps each layer in the checkpoint, which it creates
        // if need be, and continues from the last one kept.
        Limits limits = req.limits();
        boolean keep = req.checkpoint() || limits.maxBlocks() > 0 || limits.maxMeasuredLayers() > 0;
        AllocationProbe.Measurements done = first == 0 && saved == null && cp != null ? cp.measuredLayers() : null;
        Path spill = scratch.resolve("measurement.bin");
        ActivationStore inputs = done == null ? null : cp.measureInputs(model.hiddenSize(), calib.store().besideThis(spill));
        AllocationProbe.LayerSink sink = !keep ? null : (soFar, next) -> {
            if (held[0] == null) held[0] = Checkpoint.create(cpDir, args);
            held[0].saveMeasuredLayers(soFar, next);
        };
        try {
            CaspCompression casp = CaspCompression.prepare(model, probe, req.options(), req.casp(), req.lowRankOnly(), log, weights,
                    spill, saved, new CaspCompression.MeasureParts(done, inputs, sink, limits.maxMeasuredLayers()));
            cost.measurement(casp.measureSeconds(), casp.measureForwardSeconds());
            return casp;
        } finally {
            if (probe != calib) probe.close();
            if (inputs != null) inputs.close();
        }
    }

    /** Refuses an existing output (before any work), a missing calibration file, a compressed model, misplaced --images. */
    private static Inputs checkInputs(Request req) {
        Path out = req.out().toAbsolutePath().normalize();
        CompressedModelWriter.checkTarget(out, req.force());
        if (!Files.isRegularFile(req.calib())) throw new BadInputException("--calib " + req.calib() + ": no such file");
        ModelFolder folder = ModelFolder.open(req.model());
        boolean llavaCalib = isLlavaCalibration(folder, req.calib());
        if (req.images() != null && !llavaCalib)
            throw new BadInputException("--images needs a LLaVA model and a conversation JSON as --calib");
        Path images = !llavaCalib ? null : req.images() != null ? req.images() : defaultImages(req.calib());
        if (req.frames() < 0) throw new BadInputException("--frames must be positive, got " + req.frames());
        if (req.frames() > 0 && !(llavaCalib && folder.config().modelType().equals("llava_next_video")))
            throw new BadInputException("--frames needs a llava_next_video model and a conversation JSON as --calib");
        if (folder.config().quantization() != null)
            throw new BadInputException(req.model() + ": config.json has a quantization_config: the model is compressed already");
        if (!llavaCalib)
            CalibrationBudget.checkText(req.options().samples(), req.options().seqLen(), folder.config().text().hiddenSize(),
                    req.limits().activationDtype(), MemoryBudget.limit(req.limits().maxMemoryBytes()), CalibrationBudget.freeDisk(out));
        return new Inputs(out, folder, llavaCalib, images);
    }

    /** The arguments a checkpoint records (a resumed run must match them). */
    private static ObjectNode arguments(Request req, Path images) throws IOException {
        ObjectNode args = new ObjectMapper().createObjectNode();
        args.put("model", req.model().toAbsolutePath().normalize().toString());
        args.put("calib", req.calib().toAbsolutePath().normalize().toString());
        args.put("calib_sha256", sha256(req.calib()));
        if (images != null) args.put("images", images.toAbsolutePath().normalize().toString());
        if (req.frames() > 0) args.put("frames", req.frames());
        args.set("options", req.options().toJson());
        if (req.checkpoint() || req.resume() || req.limits().maxBlocks() > 0 || req.limits().maxMeasuredLayers() > 0) args.set("inputs_sha256", inputDigests(req.model()));
        if (req.casp() != null) args.set("casp", CaspCompression.optionsJson(req.casp(), req.lowRankOnly()));
        args.put("activation_dtype", req.limits().activationDtype().safetensorsName());
        return args;
    }

    /**
     * The checkpoint to resume (--resume), or null: without --resume an existing checkpoint is
     * refused, or removed with --force.
     */
    private static Checkpoint resumeOrClear(Request req, Path cpDir, ObjectNode args, PrintStream log) throws IOException {
        if (!Checkpoint.exists(cpDir)) {
            if (req.resume()) log.println("casp: no checkpoint at " + cpDir + "; starting from the first block");
            return null;
        }
        if (req.resume()) {
            Checkpoint cp = Checkpoint.open(cpDir, args);
            log.println("casp: resuming from " + cpDir + " after " + cp.completedBlocks() + " completed block(s)");
            return cp;
        }
        if (!req.force())
            throw new BadInputException(cpDir + " holds the checkpoint of an interrupted run: pass --resume to continue it, "
                    + "or --force (or delete it) to start over");
        CompressedModelWriter.deleteTree(cpDir);
        return null;
    }

    /** The calibration inputs of the first block (the vision tower runs here for a LLaVA model). */
    private static Calibration calibration(Request req, Inputs in, LlavaModel llava, LlamaModel model, ActivationStore.Settings storage) {
        CompressionOptions opt = req.options();
        return llava != null ? Calibration.fromLlava(llava, req.calib(), in.images(), opt.samples(), opt.seqLen(), opt.seed(), storage)
                : Calibration.fromTextFile(model, Tokenizer.load(req.model()), req.calib(), opt.samples(), opt.seqLen(), opt.seed(), storage);
    }

    /**
     * Compresses blocks first..end-1 into blocks, each block's weights read before it and dropped
     * after, with a checkpoint after each block but the model's last.
     */
    private static void compressBlocks(LlamaModel model, BlockWeights weights, SequentialCompressor.QuantizerPlan plan,
                                       CompressionOptions opt, Calibration calib, int first, int end, Checkpoint checkpoint,
                                       PeakMemory mem, CompressionCost cost, List<BlockResult> blocks,
                                       SequentialCompressor.Listener listener, PrintStream log) {
        SequentialCompressor.Listener l = listener == null ? new SequentialCompressor.Listener() {} : listener;
        double[] blockStart = new double[2]; // load seconds, CPU seconds at the start of the block
        SequentialCompressor.Listener withCheckpoint = new SequentialCompressor.Listener() {
            @Override
            public void blockStarted(int layer, int layers) {
                l.blockStarted(layer, layers);
                blockStart[1] = CompressionCost.processCpuSeconds();
                double before = weights.loadSeconds();
                weights.load(model.layer(layer));
                blockStart[0] = weights.loadSeconds() - before;
            }

            @Override public void linearDone(LinearResult r) { l.linearDone(r); }

            @Override
            public void blockDone(BlockResult b, Calibration activations) {
                mem.sample();
                weights.release(model.layer(b.layer()));
                long k0 = System.nanoTime();
                if (checkpoint != null && b.layer() < model.numLayers() - 1) {
                    try {
                        checkpoint.saveBlock(b, activations);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException("cannot write the checkpoint in " + checkpoint.dir(), e);
                    }
                }
                double checkpointSeconds = (System.nanoTime() - k0) / 1e9;
                cost.block(b.layer(), new CompressionCost.BlockExtra(blockStart[0], checkpointSeconds,
                        CompressionCost.processCpuSeconds() - blockStart[1]));
                blocks.add(b);
                log.println(cost.progressLine(b, blocks));
                l.blockDone(b, activations);
            }
        };
        new SequentialCompressor(model, plan, opt.trueSequential()).run(calib, first, end, withCheckpoint);
    }

    /** The report's calibration entry, with where the activations were kept. */
    private static ObjectNode calibrationJson(Request req, Inputs in, Calibration calib, long activationBytes, Limits limits,
                                              long budget, long limit) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("file", req.calib().toString());
        c.put("kind", in.llavaCalib() ? "llava" : "text");
        if (in.images() != null) c.put("images", in.images().toString());
        c.put("samples", calib.size());
        c.put("tokens", calib.tokens());
        c.put("activation_bytes", activationBytes);
        c.put("activation_dtype", limits.activationDtype().safetensorsName());
        c.put("activation_memory_budget_bytes", budget);
        c.put("activation_spilled_bytes", calib.store().spilledBytes());
        c.put("memory_limit_bytes", limit);
        return c;
    }

    /** A LLaVA model calibrated with a conversation file (*.json); any other file is plain text. */
    public static boolean isLlavaCalibration(ModelFolder folder, Path calib) {
        return folder.config().isLlava() && calib.getFileName().toString().toLowerCase(java.util.Locale.ROOT).endsWith(".json");
    }

    /** images/ beside the conversation file (the layout of LLaVA data sets and of `casp eval vqa`). */
    static Path defaultImages(Path calib) {
        Path parent = calib.toAbsolutePath().getParent();
        return parent == null ? Path.of("images") : parent.resolve("images");
    }

    static String sha256(Path file) throws IOException {
        return casp.io.Sha256.of(file);
    }

    /**
     * The digest of every file of the model folder, recorded in the checkpoint's arguments so that
     * --resume refuses a model whose weights changed since the checkpoint was made (reading the
     * weights once more: about 10 s for a 13 GB 7B model, small beside its compression).
     */
    private static ObjectNode inputDigests(Path modelDir) throws IOException {
        ObjectNode d = new ObjectMapper().createObjectNode();
        List<Path> files = new ArrayList<>();
        try (java.util.stream.Stream<Path> s = Files.list(modelDir)) {
            s.filter(Files::isRegularFile).sorted().forEach(files::add);
        }
        for (Path f : files) d.put(f.getFileName().toString(), sha256(f));
        return d;
    }
}
