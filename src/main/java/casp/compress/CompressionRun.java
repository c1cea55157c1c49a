package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.IoMessages;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import casp.model.LlavaModel;
import casp.quant.QuantizationConfig;
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
                          boolean resume, boolean checkpoint, CaspPlan.Options casp, boolean lowRankOnly) {
        /** A plain (non-CASP) request. */
        public Request(Path model, Path calib, Path images, CompressionOptions options, Path out, boolean force,
                       boolean resume, boolean checkpoint) {
            this(model, calib, images, options, out, force, resume, checkpoint, null, false);
        }
    }

    /** What was done. */
    public record Outcome(Path out, double effectiveBits, double seconds, List<BlockResult> blocks, ObjectNode report,
                          long outputBytes, long activationBytes, long peakHeapBytes, long peakRssBytes,
                          int resumedFromBlock) {}

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

        try (PeakMemory mem = PeakMemory.start()) {
            // Only the language model is compressed; a LLaVA model's vision tower and projector are
            // used to build the calibration inputs and are copied unchanged.
            LlavaModel llava = in.llavaCalib() ? LlavaModel.load(in.folder()) : null;
            LlamaModel model = llava != null ? llava.language() : LlamaModel.load(in.folder());
            int first = cp == null ? 0 : cp.completedBlocks();
            if (first > model.numLayers())
                throw new BadInputException(cpDir + ": checkpoint has " + first + " blocks, the model " + model.numLayers());
            Calibration calib = first > 0 ? cp.activations(model.hiddenSize()) : calibration(req, in, llava, model);
            long activationBytes = calib.bytes();
            SequentialCompressor.QuantizerPlan plan = opt.plan(model);
            CaspCompression casp = null;
            if (req.casp() != null) {
                // The plan is measured on the uncompressed model's calibration inputs: rebuilt when resuming.
                Calibration probe = first == 0 ? calib : calibration(req, in, llava, model);
                casp = CaspCompression.prepare(model, probe, opt, req.casp(), req.lowRankOnly(), log);
                plan = casp.quantizerPlan();
            }
            llava = null; // the vision tower is not needed any more
            // Created only now, so that a user error above (a short text, a bad model, a plan over the budget) leaves no checkpoint.
            if (cp == null && req.checkpoint()) cp = Checkpoint.create(cpDir, args);

            List<BlockResult> blocks = new ArrayList<>(cp == null ? List.of() : cp.blocks());
            blocks.addAll(compressBlocks(model, plan, opt, calib, first, cp, mem, listener));
            if (casp != null) casp.checkBudget(blocks);

            mem.sample();
            double seconds = (System.nanoTime() - t0) / 1e9;
            long peakRss = PeakMemory.peakRssBytes();
            ObjectNode report = CompressionReport.build(req.model().toString(), calibrationJson(req, in, calib, activationBytes),
                    opt.toJson(), blocks, seconds, mem.peakHeapBytes(), peakRss, activationBytes, first);
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
                    mem.peakHeapBytes(), peakRss, first);
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
        if (folder.config().quantization() != null)
            throw new BadInputException(req.model() + ": config.json has a quantization_config: the model is compressed already");
        if (!llavaCalib) CalibrationBudget.checkText(req.options().samples(), req.options().seqLen(), folder.config().text().hiddenSize());
        return new Inputs(out, folder, llavaCalib, images);
    }

    /** The arguments a checkpoint records (a resumed run must match them). */
    private static ObjectNode arguments(Request req, Path images) throws IOException {
        ObjectNode args = new ObjectMapper().createObjectNode();
        args.put("model", req.model().toAbsolutePath().normalize().toString());
        args.put("calib", req.calib().toAbsolutePath().normalize().toString());
        args.put("calib_sha256", sha256(req.calib()));
        if (images != null) args.put("images", images.toAbsolutePath().normalize().toString());
        args.set("options", req.options().toJson());
        if (req.checkpoint() || req.resume()) args.set("inputs_sha256", inputDigests(req.model()));
        if (req.casp() != null) args.set("casp", CaspCompression.optionsJson(req.casp(), req.lowRankOnly()));
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

    /** The calibration inputs of the first block: LLaVA conversations with images, or windows of a text. */
    private static Calibration calibration(Request req, Inputs in, LlavaModel llava, LlamaModel model) {
        CompressionOptions opt = req.options();
        return llava != null ? Calibration.fromLlava(llava, req.calib(), in.images(), opt.samples(), opt.seqLen(), opt.seed())
                : Calibration.fromTextFile(model, Tokenizer.load(req.model()), req.calib(), opt.samples(), opt.seqLen(), opt.seed());
    }

    /** Compresses blocks first.. with a checkpoint after each block but the last. */
    private static List<BlockResult> compressBlocks(LlamaModel model, SequentialCompressor.QuantizerPlan plan, CompressionOptions opt,
                                                    Calibration calib, int first, Checkpoint checkpoint, PeakMemory mem,
                                                    SequentialCompressor.Listener listener) {
        SequentialCompressor.Listener l = listener == null ? new SequentialCompressor.Listener() {} : listener;
        SequentialCompressor.Listener withCheckpoint = new SequentialCompressor.Listener() {
            @Override public void blockStarted(int layer, int layers) { l.blockStarted(layer, layers); }

            @Override public void linearDone(LinearResult r) { l.linearDone(r); }

            @Override
            public void blockDone(BlockResult b, Calibration activations) {
                mem.sample();
                if (checkpoint != null && b.layer() < model.numLayers() - 1) {
                    try {
                        checkpoint.saveBlock(b, activations);
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException("cannot write the checkpoint in " + checkpoint.dir(), e);
                    }
                }
                l.blockDone(b, activations);
            }
        };
        return new SequentialCompressor(model, plan, opt.trueSequential()).run(calib, first, withCheckpoint);
    }

    /** The report's calibration entry. */
    private static ObjectNode calibrationJson(Request req, Inputs in, Calibration calib, long activationBytes) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("file", req.calib().toString());
        c.put("kind", in.llavaCalib() ? "llava" : "text");
        if (in.images() != null) c.put("images", in.images().toString());
        c.put("samples", calib.size());
        c.put("tokens", calib.tokens());
        c.put("activation_bytes", activationBytes);
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
