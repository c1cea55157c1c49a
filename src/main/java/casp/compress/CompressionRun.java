package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.io.ChatTemplate;
import casp.model.LlamaModel;
import casp.model.LlavaImageEncoder;
import casp.model.LlavaModel;
import casp.quant.QuantizationConfig;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
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
     */
    public record Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                          boolean resume, boolean checkpoint, CaspPlan.Options casp, boolean lowRankOnly, Limits limits) {
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
     */
    public record Limits(DType activationDtype, long maxMemoryBytes, int maxBlocks) {
        public Limits {
            if (activationDtype != DType.F32 && activationDtype != DType.BF16)
                throw new BadInputException("--activation-dtype must be f32 or bf16, got " + activationDtype);
            if (maxMemoryBytes < 0) throw new BadInputException("--max-memory must be positive, got " + maxMemoryBytes);
            if (maxBlocks < 0) throw new BadInputException("--max-blocks must be >= 1, got " + maxBlocks);
        }

        public static Limits defaults() {
            return new Limits(DType.F32, 0, 0);
        }
    }

    /** What was done. */
    /**
     * What was done. When the run stopped at --max-blocks, complete is false, out is the checkpoint
     * folder (holding casp-report.json) and outputBytes is 0.
     */
    public record Outcome(Path out, double effectiveBits, double seconds, List<BlockResult> blocks, ObjectNode report,
                          long outputBytes, long activationBytes, long peakHeapBytes, long peakRssBytes,
                          int resumedFromBlock, boolean complete, long spilledBytes) {}

    /**
     * Runs the request. listener (may be null) sees every block and linear; log gets one-line notes
     * (resuming, checkpoint removed). User errors are {@link BadInputException}s.
     */
    public static Outcome run(Request req, SequentialCompressor.Listener listener, PrintStream log) throws IOException {
        long t0 = System.nanoTime();
        Path out = req.out().toAbsolutePath().normalize();
        CompressedModelWriter.checkTarget(out, req.force());
        if (!Files.isRegularFile(req.calib())) throw new BadInputException("--calib " + req.calib() + ": no such file");
        ModelFolder folder = ModelFolder.open(req.model());
        boolean llavaCalib = isLlavaCalibration(folder, req.calib());
        if (req.images() != null && !llavaCalib)
            throw new BadInputException("--images needs a LLaVA model and a conversation JSON as --calib");
        Path images = !llavaCalib ? null : req.images() != null ? req.images() : defaultImages(req.calib());
        if (folder.config().quantization() != null)
            throw new BadInputException(req.model() + ": config.json has a quantization_config: the model is compressed already");
        CompressionOptions opt = req.options();

        ObjectNode args = new ObjectMapper().createObjectNode();
        args.put("model", req.model().toAbsolutePath().normalize().toString());
        args.put("calib", req.calib().toAbsolutePath().normalize().toString());
        args.put("calib_sha256", sha256(req.calib()));
        if (images != null) args.put("images", images.toAbsolutePath().normalize().toString());
        args.set("options", opt.toJson());
        if (req.casp() != null) args.set("casp", CaspCompression.optionsJson(req.casp(), req.lowRankOnly()));
        args.put("activation_dtype", req.limits().activationDtype().safetensorsName());

        Path cpDir = Checkpoint.dirFor(out);
        Checkpoint cp = null;
        if (Checkpoint.exists(cpDir)) {
            if (req.resume()) {
                cp = Checkpoint.open(cpDir, args);
                log.println("casp: resuming from " + cpDir + " after " + cp.completedBlocks() + " completed block(s)");
            } else if (!req.force()) {
                throw new BadInputException(cpDir + " holds the checkpoint of an interrupted run: pass --resume to continue it, "
                        + "or --force (or delete it) to start over");
            } else {
                CompressedModelWriter.deleteTree(cpDir); // --force: start over
            }
        } else if (req.resume()) {
            log.println("casp: no checkpoint at " + cpDir + "; starting from the first block");
        }

        Limits limits = req.limits();
        Path scratch = out.resolveSibling("." + out.getFileName() + ".activations-" + ProcessHandle.current().pid());
        Calibration calib = null;
        try (PeakMemory mem = PeakMemory.start()) {
            // Only the language model is compressed; a LLaVA model's vision tower and projector are
            // used to build the calibration inputs and are copied unchanged. The decoder's weights
            // are read block by block.
            BlockWeights.Loaded loaded = BlockWeights.loadModel(folder);
            LlamaModel model = loaded.model();
            BlockWeights weights = loaded.weights();
            LlavaModel llava = llavaCalib ? new LlavaModel(folder, model, LlavaImageEncoder.load(folder), Tokenizer.load(folder.dir()),
                    ChatTemplate.load(folder.dir())) : null;
            int first = cp == null ? 0 : cp.completedBlocks();
            if (first > model.numLayers())
                throw new BadInputException(cpDir + ": checkpoint has " + first + " blocks, the model " + model.numLayers());
            int end = limits.maxBlocks() == 0 ? model.numLayers() : Math.min(model.numLayers(), first + limits.maxBlocks());

            long limit = MemoryBudget.limit(limits.maxMemoryBytes());
            int maxTokens = llava != null ? opt.seqLen() + llava.vision().tokensPerImage() : opt.seqLen(); // one image per conversation
            long budget = MemoryBudget.activationBudget(limit, MemoryBudget.residentHeap(),
                    MemoryBudget.blockWorkingSet(model.config(), maxTokens));
            ActivationStore.Settings storage = new ActivationStore.Settings(limits.activationDtype(), budget, scratch.resolve("calibration.bin"));
            CompressionCost cost = new CompressionCost(model.numLayers());

            long c0 = System.nanoTime();
            calib = first > 0 ? cp.activations(model.hiddenSize(), storage) : calibration(req, model, llava, images, storage);
            cost.calibration((System.nanoTime() - c0) / 1e9, calib.visionSeconds(), calib.images());
            // casp: the plan rests on measurements of the uncompressed model: kept in the checkpoint,
            // or (when the checkpoint could not keep them) measured again on rebuilt calibration inputs.
            AllocationProbe.Measurements saved = cp == null ? null : MeasurementsFile.read(cp.dir());
            Calibration probeCalib = req.casp() == null || first == 0 || saved != null ? calib : calibration(req, model, llava, images,
                    storage.withSpillFile(scratch.resolve("probe-inputs.bin")));
            llava = null; // the vision tower is not needed any more
            long activationBytes = calib.bytes();
            SequentialCompressor.QuantizerPlan plan = opt.plan(model);
            CaspCompression casp = null;
            if (req.casp() != null) {
                casp = CaspCompression.prepare(model, probeCalib, opt, req.casp(), req.lowRankOnly(), log, weights,
                        scratch.resolve("measurement.bin"), saved);
                cost.measurement(casp.measureSeconds(), casp.measureForwardSeconds());
                if (probeCalib != calib) probeCalib.close();
                probeCalib = null;
                plan = casp.quantizerPlan();
            }
            // Created only now, so that a user error above (a short text, a bad model, a plan over the budget) leaves no checkpoint.
            if (cp == null && (req.checkpoint() || end < model.numLayers())) {
                cp = Checkpoint.create(cpDir, args);
                if (casp != null && MeasurementsFile.keepable(casp.measurements())) MeasurementsFile.write(cp.dir(), casp.measurements());
            }

            List<BlockResult> blocks = new ArrayList<>(cp == null ? List.of() : cp.blocks());
            final Checkpoint checkpoint = cp;
            final int endBlock = end;
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
            new SequentialCompressor(model, plan, opt.trueSequential()).run(calib, first, endBlock, withCheckpoint);
            boolean complete = endBlock == model.numLayers();
            if (casp != null && complete) casp.checkBudget(blocks);

            List<LinearResult> all = new ArrayList<>();
            for (BlockResult b : blocks) all.addAll(b.linears());
            ObjectNode calJson = new ObjectMapper().createObjectNode();
            calJson.put("file", req.calib().toString());
            calJson.put("kind", llavaCalib ? "llava" : "text");
            if (images != null) calJson.put("images", images.toString());
            calJson.put("samples", calib.size());
            calJson.put("tokens", calib.tokens());
            calJson.put("activation_bytes", activationBytes);
            calJson.put("activation_dtype", limits.activationDtype().safetensorsName());
            calJson.put("activation_memory_budget_bytes", budget);
            calJson.put("activation_spilled_bytes", calib.store().spilledBytes());
            calJson.put("memory_limit_bytes", limit);
            mem.sample();
            double seconds = (System.nanoTime() - t0) / 1e9;
            long peakRss = PeakMemory.peakRssBytes();
            ObjectNode report = CompressionReport.build(req.model().toString(), calJson, opt.toJson(), blocks, seconds,
                    mem.peakHeapBytes(), peakRss, activationBytes, first);
            report.set("cost", cost.json(blocks, peakRss, mem.peakHeapBytes()));
            long spilled = calib.store().spilledBytes();
            if (!complete) { // --max-blocks: the checkpoint holds the blocks done; the report goes beside it
                report.put("stopped_after_block", endBlock - 1);
                Path r = cpDir.resolve("casp-report.json");
                Files.write(r, new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
                log.println("casp: stopped after block " + endBlock + " of " + model.numLayers() + " (--max-blocks); continue with --resume");
                return new Outcome(cpDir, CompressionReport.effectiveBits(blocks), seconds, blocks, report, 0, activationBytes,
                        mem.peakHeapBytes(), peakRss, first, false, spilled);
            }
            QuantizationConfig qconfig = CompressedModelWriter.quantizationConfig(folder, opt, all);
            if (casp != null) {
                report.set("casp", casp.report(blocks));
                qconfig = casp.annotate(qconfig);
            }
            long bytes = CompressedModelWriter.write(folder, all, qconfig, report, out, req.force());
            if (cp != null) cp.delete();
            return new Outcome(out, CompressionReport.effectiveBits(blocks), seconds, blocks, report, bytes, activationBytes,
                    mem.peakHeapBytes(), peakRss, first, true, spilled);
        } finally {
            if (calib != null) calib.close();
            CompressedModelWriter.deleteTree(scratch);
        }
    }

    /** The calibration inputs of the first block (the vision tower runs here for a LLaVA model). */
    private static Calibration calibration(Request req, LlamaModel model, LlavaModel llava, Path images, ActivationStore.Settings storage) {
        CompressionOptions opt = req.options();
        return llava != null ? Calibration.fromLlava(llava, req.calib(), images, opt.samples(), opt.seqLen(), opt.seed(), storage)
                : Calibration.fromTextFile(model, Tokenizer.load(req.model()), req.calib(), opt.samples(), opt.seqLen(), opt.seed(), storage);
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
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
