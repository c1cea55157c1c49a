package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.io.TensorInfo;
import casp.quant.CompressedLayer;
import casp.quant.registry.Formats;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A block-level checkpoint of a compression run, so that a long run can resume (--resume) where
 * it stopped and produce the same result. It lives in a folder next to the output,
 * {@code OUT.partial}:
 * <ul>
 *   <li>block-I.safetensors: the stored tensors of block I's linears, each under its name
 *       (e.g. self_attn.q_proj.qweight; see {@link CompressedLayer#write});</li>
 *   <li>activations-K.safetensors: the inputs of block K (the first block not done) for every
 *       calibration sample, "sample.J" F32 or BF16 (as the run keeps them) [tokens, hidden];</li>
 *   <li>measurements.json: CASP's measurements of the uncompressed model, when they can be kept
 *       ({@link MeasurementsFile});</li>
 *   <li>while that measurement (hours on a 7B model) is under way: measurements-partial.json, the
 *       layers measured so far, and measure-activations-K.safetensors, the inputs of layer K, the
 *       first not measured (as activations-K), so that it continues from there;</li>
 *   <li>state.json: the run's arguments (a resumed run must match them; they include the digests
 *       of the model's files), the blocks done with their report entries, which activations files are
 *       current, the SHA-256 of each block and activations file, and its own digest.</li>
 * </ul>
 * A resumed run verifies every digest before using a file, so a flipped byte or a file changed
 * since it was written is refused ({@link CheckpointDigests}) instead of giving another model.
 * Every file is written under a temporary name and renamed, and state.json is replaced last, so
 * a crash at any point leaves the previous consistent state. The random choices of a run (the
 * calibration windows) are fixed by its seed and are already in the activations, so the blocks
 * after a resume see exactly the inputs they would have seen.
 */
public final class Checkpoint {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String STATE = "state.json";

    private final Path dir;
    private final JsonNode arguments;
    private final List<BlockResult> blocks = new ArrayList<>();
    private String activationsFile;
    /** The inputs of the first layer the partial measurement lacks (null when none is under way). */
    private String measureInputsFile;
    private final CheckpointDigests digests = new CheckpointDigests();

    private Checkpoint(Path dir, JsonNode arguments) {
        this.dir = dir;
        this.arguments = arguments;
    }

    /** The checkpoint folder of an output folder: OUT.partial beside it. */
    public static Path dirFor(Path out) {
        Path o = out.toAbsolutePath().normalize();
        return o.resolveSibling(o.getFileName() + ".partial");
    }

    /** Whether dir holds a checkpoint. */
    public static boolean exists(Path dir) {
        return Files.isRegularFile(dir.resolve(STATE));
    }

    /** Starts a new checkpoint in dir (removing whatever was there). */
    public static Checkpoint create(Path dir, JsonNode arguments) throws IOException {
        CompressedModelWriter.deleteTree(dir);
        Files.createDirectories(dir);
        Checkpoint c = new Checkpoint(dir, arguments);
        c.writeState();
        return c;
    }

    /**
     * Opens the checkpoint in dir, checking that it was made with these arguments. Its blocks come
     * back with their packed tensors.
     */
    public static Checkpoint open(Path dir, JsonNode arguments) {
        Path state = dir.resolve(STATE);
        JsonNode root;
        try {
            root = JSON.readTree(state.toFile());
        } catch (IOException e) {
            throw new BadInputException(state + ": cannot read the checkpoint: " + e.getMessage());
        }
        CheckpointDigests.verifyState(state, root);
        JsonNode saved = root.get("arguments");
        JsonNode now = normalized(arguments);
        if (saved == null || !saved.equals(now)) {
            throw new BadInputException(dir + " is the checkpoint of a run with other arguments (" + difference(saved, now)
                    + "); rerun with the same arguments, or use --force to start over");
        }
        Checkpoint c = new Checkpoint(dir, saved);
        c.digests.read(root);
        for (JsonNode b : root.path("blocks")) {
            BlockResult meta = CompressionReport.blockFromJson(b);
            c.blocks.add(c.readBlock(meta));
        }
        c.activationsFile = root.path("activations").isNull() ? null : root.path("activations").asText(null);
        if (c.activationsFile != null) c.digests.verify(dir.resolve(c.activationsFile));
        c.measureInputsFile = root.path("measure_activations").isNull() ? null : root.path("measure_activations").asText(null);
        if (c.measureInputsFile != null) c.digests.verify(dir.resolve(c.measureInputsFile));
        return c;
    }

    /** The JSON as it reads back from a file (an int and a long of the same value compare equal then). */
    private static JsonNode normalized(JsonNode n) {
        try {
            return JSON.readTree(JSON.writeValueAsString(n));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The first field that differs, as "name: saved vs now". */
    private static String difference(JsonNode saved, JsonNode now) {
        if (saved == null || !saved.isObject() || !now.isObject()) return "saved " + saved + " vs " + now;
        java.util.Set<String> names = new java.util.TreeSet<>();
        saved.fieldNames().forEachRemaining(names::add);
        now.fieldNames().forEachRemaining(names::add);
        for (String f : names) {
            JsonNode a = saved.get(f), b = now.get(f);
            if (a == null || !a.equals(b)) {
                if (a != null && b != null && a.isObject() && b.isObject()) return f + "." + difference(a, b);
                return f + ": checkpoint " + a + ", this run " + b;
            }
        }
        return "none";
    }

    public Path dir() { return dir; }

    /** Blocks done, in order (0 .. completedBlocks()-1). */
    public List<BlockResult> blocks() { return blocks; }

    public int completedBlocks() { return blocks.size(); }

    /**
     * The saved inputs of the first block not done, as a calibration (hidden width given), or null
     * when no block is done yet.
     */
    public Calibration activations(int hidden) {
        return activations(hidden, ActivationStore.Settings.inMemory());
    }

    /** {@link #activations(int)} into a store with the given settings. */
    public Calibration activations(int hidden, ActivationStore.Settings storage) {
        return activationsFile == null ? null : new Calibration(readActivations(dir.resolve(activationsFile), hidden, storage));
    }

    /** The samples of f (verified by open) into a new store. */
    private static ActivationStore readActivations(Path f, int hidden, ActivationStore.Settings storage) {
        SafeTensorsFile st = SafeTensorsFile.open(f);
        ActivationStore store = new ActivationStore(hidden, storage);
        for (int j = 0; ; j++) {
            String name = "sample." + j;
            if (!st.tensors().containsKey(name)) break;
            TensorInfo t = st.info(name);
            if (t.shape().length != 2 || t.shape()[1] != hidden)
                throw new BadInputException(f + ": tensor '" + name + "' does not have " + hidden + " columns");
            store.add(st.readFloats(name), (int) t.shape()[0]);
        }
        if (store.size() == 0) throw new BadInputException(f + ": no activations in the checkpoint");
        return store;
    }

    /** Writes the samples of store into dir/name and records its digest. */
    private void writeActivations(String name, ActivationStore store) throws IOException {
        SafeTensorsWriter a = new SafeTensorsWriter();
        for (int j = 0; j < store.size(); j++) { // at the store's element type, streamed sample by sample
            final int sample = j;
            a.add("sample." + j, store.dtype(), new long[]{store.tokens(j), store.hidden()}, out -> store.writeRaw(sample, out));
        }
        a.write(dir.resolve(name));
        digests.record(dir.resolve(name));
    }

    /** Records a finished block: its tensors, the next block's inputs, then the state. */
    public void saveBlock(BlockResult block, Calibration nextInputs) throws IOException {
        if (block.layer() != blocks.size())
            throw new IllegalStateException("block " + block.layer() + " saved after " + blocks.size() + " blocks");
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (LinearResult r : block.linears()) r.stored().write(w, r.name());
        w.write(dir.resolve(blockFile(block.layer())));
        digests.record(dir.resolve(blockFile(block.layer())));

        String prev = activationsFile;
        String next = "activations-" + (block.layer() + 1) + ".safetensors";
        writeActivations(next, nextInputs.store());
        if (prev != null && !prev.equals(next)) digests.forget(prev);

        blocks.add(block);
        activationsFile = next;
        writeState();
        if (prev != null && !prev.equals(next)) Files.deleteIfExists(dir.resolve(prev));
    }

    /**
     * Keeps CASP's measurements of the uncompressed model ({@link MeasurementsFile}) with their
     * digest, so that a resumed run plans as this one did.
     */
    public void saveMeasurements(AllocationProbe.Measurements m) throws IOException {
        MeasurementsFile.write(dir, m, MeasurementsFile.NAME);
        digests.record(dir.resolve(MeasurementsFile.NAME));
        String inputs = measureInputsFile;
        boolean partial = Files.exists(dir.resolve(MeasurementsFile.PARTIAL));
        if (inputs != null) digests.forget(inputs);
        if (partial) digests.forget(MeasurementsFile.PARTIAL);
        measureInputsFile = null;
        writeState();
        if (inputs != null) Files.deleteIfExists(dir.resolve(inputs));
        if (partial) Files.deleteIfExists(dir.resolve(MeasurementsFile.PARTIAL));
    }

    /**
     * Keeps the layers of a measurement done so far (soFar, without q/k spectra) and the inputs of
     * the next layer, replacing the previous ones.
     */
    public void saveMeasuredLayers(AllocationProbe.Measurements soFar, ActivationStore nextInputs) throws IOException {
        String prev = measureInputsFile;
        String next = "measure-activations-" + soFar.influence().length + ".safetensors";
        writeActivations(next, nextInputs);
        MeasurementsFile.write(dir, soFar, MeasurementsFile.PARTIAL);
        digests.record(dir.resolve(MeasurementsFile.PARTIAL));
        if (prev != null && !prev.equals(next)) digests.forget(prev);
        measureInputsFile = next;
        writeState();
        if (prev != null && !prev.equals(next)) Files.deleteIfExists(dir.resolve(prev));
    }

    /** The layers of an unfinished measurement ({@link #saveMeasuredLayers}), verified, or null when none is under way. */
    public AllocationProbe.Measurements measuredLayers() {
        if (measureInputsFile == null) return null;
        Path f = dir.resolve(MeasurementsFile.PARTIAL);
        digests.verify(f);
        return MeasurementsFile.read(dir, MeasurementsFile.PARTIAL);
    }

    /** The inputs of the first layer the unfinished measurement lacks, into a new store; null when none is under way. */
    public ActivationStore measureInputs(int hidden, ActivationStore.Settings storage) {
        return measureInputsFile == null ? null : readActivations(dir.resolve(measureInputsFile), hidden, storage);
    }

    /** Whether the whole measurement is kept ({@link #saveMeasurements}). */
    public boolean hasMeasurements() {
        return Files.isRegularFile(dir.resolve(MeasurementsFile.NAME));
    }

    /** The measurements kept by {@link #saveMeasurements}, verified against their digest, or null when there are none. */
    public AllocationProbe.Measurements measurements() {
        Path f = dir.resolve(MeasurementsFile.NAME);
        if (!Files.isRegularFile(f)) return null;
        digests.verify(f);
        return MeasurementsFile.read(dir, MeasurementsFile.NAME);
    }

    /** Removes the checkpoint (after the output is complete). */
    public void delete() throws IOException {
        CompressedModelWriter.deleteTree(dir);
    }

    private static String blockFile(int layer) {
        return "block-" + layer + ".safetensors";
    }

    private BlockResult readBlock(BlockResult meta) {
        Path f = digests.verify(dir.resolve(blockFile(meta.layer())));
        SafeTensorsFile st = SafeTensorsFile.open(f);
        List<LinearResult> lin = new ArrayList<>();
        for (LinearResult r : meta.linears()) {
            CompressedLayer stored = Formats.read(st, r.name(), r.method(), r.rows(), r.cols(), r.bits(), r.stats());
            if (stored == null) throw new BadInputException(f + ": no tensors for " + r.name() + " of block " + meta.layer());
            lin.add(r.withStored(stored));
        }
        return new BlockResult(meta.layer(), lin, meta.seconds(), meta.forwardSeconds(), meta.hessianSeconds());
    }

    private void writeState() throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("format_version", 1);
        root.set("arguments", arguments);
        ArrayNode a = root.putArray("blocks");
        for (BlockResult b : blocks) a.add(CompressionReport.blockJson(b));
        if (activationsFile == null) root.putNull("activations");
        else root.put("activations", activationsFile);
        if (measureInputsFile != null) root.put("measure_activations", measureInputsFile);
        digests.write(root);
        Path tmp = dir.resolve(STATE + ".tmp");
        Files.write(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
        Files.move(tmp, dir.resolve(STATE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
