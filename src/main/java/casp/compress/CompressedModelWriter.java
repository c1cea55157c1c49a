package casp.compress;

import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.CaspOnlyFolder;
import casp.io.ModelFolder;
import casp.io.SafeTensorsWriter;
import casp.io.WeightStore;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import casp.model.LowRankLinear;
import casp.model.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Writes a compressed model as a Hugging Face-style folder (ALGORITHMS.md section 10):
 * <ul>
 *   <li>config.json: the source's, plus "quantization_config" ({@link #quantizationConfig}); for
 *       a folder other loaders would misread (see {@link #caspOnly}) a model_type and architecture
 *       of casp's own ({@link CaspOnlyFolder}), so they refuse it;</li>
 *   <li>model.safetensors (or shards of at most 4 GiB with model.safetensors.index.json): for each
 *       quantized linear {@code <name>.qweight/.qzeros/.scales/.g_idx} in the GPTQ v1 layout
 *       ({@link GptqFormat}) in place of {@code <name>.weight} (its bias is kept); every other
 *       tensor copied byte for byte;</li>
 *   <li>the tokenizer, preprocessor, generation and chat-template files, copied;</li>
 *   <li>casp-report.json.</li>
 * </ul>
 * The folder is built under a temporary name next to the target ({@code .NAME.tmp-PID}) and
 * renamed when complete; on an error the temporary folder is removed, and a shutdown hook removes
 * it when the JVM is stopped (Ctrl-C) while writing. So the target is either absent, the old
 * folder (with --force) or complete.
 */
public final class CompressedModelWriter {
    private CompressedModelWriter() {}

    /** Files of a model folder carried into the output unchanged (besides config.json and the weights). */
    static final Set<String> COPIED_FILES = Set.of("tokenizer.json", "tokenizer_config.json", "tokenizer.model",
            "special_tokens_map.json", "added_tokens.json", "generation_config.json", "preprocessor_config.json",
            "processor_config.json", "chat_template.json", "chat_template.jinja", "vocab.json", "merges.txt");

    /** The casp.* format version of the quantization_config written here. */
    public static final int FORMAT_VERSION = 1;

    /**
     * Fails with a {@link BadInputException} when out exists and force is false: call it before
     * hours of compression, not only when writing.
     */
    public static void checkTarget(Path out, boolean force) {
        if (Files.exists(out) && !force)
            throw new BadInputException("--out " + out + " already exists; pass --force to replace it");
        if (Files.exists(out) && !Files.isDirectory(out))
            throw new BadInputException("--out " + out + " exists and is not a folder; not replacing it");
    }

    /** Test hook: called after the weights are written, before the rename; may throw to simulate a crash. */
    interface Hook {
        void beforeRename(Path tmp) throws IOException;
    }

    /**
     * Writes the folder.
     *
     * @param source   the uncompressed model the results come from
     * @param results  every quantized linear (with its packed tensors)
     * @param qconfig  the quantization_config object (see {@link #quantizationConfig})
     * @param report   casp-report.json's content
     * @param out      the target folder
     * @param force    replace an existing target
     * @return bytes of the weights files
     */
    public static long write(ModelFolder source, List<LinearResult> results, ObjectNode qconfig, JsonNode report,
                             Path out, boolean force) throws IOException {
        return write(source, results, qconfig, report, out, force, null);
    }

    static long write(ModelFolder source, List<LinearResult> results, ObjectNode qconfig, JsonNode report,
                      Path out, boolean force, Hook hook) throws IOException {
        out = out.toAbsolutePath().normalize();
        checkTarget(out, force);
        Path parent = out.getParent();
        Files.createDirectories(parent);
        long pid = ProcessHandle.current().pid();
        Path tmp = parent.resolve("." + out.getFileName() + ".tmp-" + pid);
        deleteTree(tmp);
        final Path tmpFinal = tmp;
        Thread cleanup = new Thread(() -> deleteQuietly(tmpFinal), "casp-remove-partial-output");
        Runtime.getRuntime().addShutdownHook(cleanup);
        boolean done = false;
        try {
            Files.createDirectory(tmp);
            long bytes = writeInto(tmp, source, results, qconfig, report);
            if (hook != null) hook.beforeRename(tmp);
            Path old = null;
            if (Files.exists(out)) {
                old = parent.resolve("." + out.getFileName() + ".old-" + pid);
                deleteTree(old);
                Files.move(out, old, StandardCopyOption.ATOMIC_MOVE);
            }
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            done = true;
            if (old != null) deleteTree(old);
            return bytes;
        } finally {
            if (!done) deleteQuietly(tmp);
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs anyway; the folder is gone or complete
            }
        }
    }

    private static long writeInto(Path dir, ModelFolder source, List<LinearResult> results, ObjectNode qconfig,
                                  JsonNode report) throws IOException {
        ObjectMapper json = new ObjectMapper();
        // config.json: the original plus quantization_config.
        ObjectNode config = (ObjectNode) source.config().raw().deepCopy();
        config.set("quantization_config", qconfig);
        if (caspOnly(results)) CaspOnlyFolder.mark(config); // other loaders would misread it: make them refuse it
        Files.write(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(config));

        // model.safetensors: quantized linears replaced, everything else copied.
        Map<String, LinearResult> byPrefix = new HashMap<>();
        for (LinearResult r : results) {
            if (r.packed() == null && r.lowRank() == null && r.stored() == null && r.aqlm() == null)
                throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " has no packed tensors");
            byPrefix.put(source.layer(r.layer(), r.name()), r);
        }
        WeightStore w = source.weights();
        SafeTensorsWriter st = new SafeTensorsWriter().metadata("format", "pt");
        int replaced = 0;
        for (String name : w.names()) {
            LinearResult r = name.endsWith(".weight") ? byPrefix.get(name.substring(0, name.length() - ".weight".length())) : null;
            if (r == null) {
                st.copy(w.file(name), name);
                continue;
            }
            if (r.lowRank() != null) { // casp: the projection is stored as its factors A (u) and B (v)
                String prefix = name.substring(0, name.length() - ".weight".length());
                r.lowRank().write(st, LowRankLinear.uPrefix(prefix), LowRankLinear.vPrefix(prefix));
                replaced++;
                continue;
            }
            if (r.stored() != null) { // QuIP#: codes, signs and scale
                r.stored().write(st, name.substring(0, name.length() - ".weight".length()));
                replaced++;
                continue;
            }
            if (r.aqlm() != null) { // aqlm: <prefix>.codes / .codebooks / .scales
                r.aqlm().tensors().write(st, name.substring(0, name.length() - ".weight".length()));
                replaced++;
                continue;
            }
            String p = name.substring(0, name.length() - ".weight".length()) + ".";
            GptqPacking.Tensors t = r.packed();
            st.addInts(p + GptqFormat.QWEIGHT, new long[]{GptqPacking.words(t.in, t.bits), t.out}, t.qweight);
            st.addInts(p + GptqFormat.QZEROS, new long[]{t.groups(), GptqPacking.words(t.out, t.bits)}, t.qzeros);
            st.addF16(p + GptqFormat.SCALES, new long[]{t.groups(), t.out}, Fp16.toFloats(t.scales));
            st.addInts(p + GptqFormat.G_IDX, new long[]{t.in}, t.gIdx);
            replaced++;
        }
        if (replaced != byPrefix.size())
            throw new IllegalStateException("only " + replaced + " of " + byPrefix.size() + " quantized linears have a weight in " + source.dir());
        long bytes = 0;
        for (Path f : st.writeSharded(dir, SHARD_BYTES)) bytes += Files.size(f);

        // Tokenizer, preprocessor, generation and chat files.
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(source.dir())) {
            for (Path f : ds) {
                if (Files.isRegularFile(f) && COPIED_FILES.contains(f.getFileName().toString()))
                    Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Files.write(dir.resolve("casp-report.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        return bytes;
    }

    /** Largest weights file written; larger models go into shards with an index (4 GiB, under Hugging Face's 5 GB default). */
    static final long SHARD_BYTES = 4L << 30;

    /**
     * Whether a standard loader would misread the folder: CASP's factor pairs, casp's QuIP# layout,
     * AQLM linears with different codebook counts (Hugging Face's AQLM reader takes one count).
     */
    static boolean caspOnly(List<LinearResult> results) {
        java.util.Set<Integer> counts = new java.util.HashSet<>();
        for (LinearResult r : results) {
            if (r.lowRank() != null || r.stored() != null) return true;
            if (r.aqlm() != null) counts.add(r.aqlm().numCodebooks);
        }
        return counts.size() > 1;
    }

    /**
     * quantization_config for the results: the AutoGPTQ fields (quant_method "gptq", bits, group_size,
     * desc_act (true only when some g_idx is not in input order), sym, static_groups, true_sequential,
     * damp_percent, checkpoint_format "gptq" = v1) so GPTQ readers recognise the tensors, GPTQModel's
     * "dynamic" giving every linear whose width or group size differs from the top-level ones (so
     * GPTQModel and transformers size each module's tensors right), and a "casp" object: version, method (rtn|gptq), backend,
     * per-linear bits and group sizes by tensor prefix (the top-level bits / group_size are those of
     * most weights), and the calibration settings.
     */
    public static ObjectNode quantizationConfig(ModelFolder source, CompressionOptions opt, List<LinearResult> results) {
        if (opt.isQuip()) return quipConfig(source, opt, results);
        if (opt.method().equals("aqlm")) return AqlmFormat.quantizationConfig(source, opt, results);
        ObjectNode q = new ObjectMapper().createObjectNode();
        Map<Integer, Long> bitsWeight = new LinkedHashMap<>(), groupWeight = new LinkedHashMap<>();
        for (LinearResult r : results) {
            if (r.lowRank() != null) continue; // casp factors are listed on their own below
            bitsWeight.merge(r.bits(), r.weights(), Long::sum);
            groupWeight.merge(r.groupSize(), r.weights(), Long::sum);
        }
        int bits = mostCommon(bitsWeight, opt.bits()), groupSize = mostCommon(groupWeight, -1);
        q.put("quant_method", "gptq");
        q.put("bits", bits);
        q.put("group_size", groupSize);
        q.put("desc_act", GptqFormat.anyActOrder(results)); // act-order with static groups keeps g_idx sequential
        ObjectNode dynamic = GptqFormat.dynamic(source, results, bits, groupSize);
        if (dynamic.size() > 0) q.set("dynamic", dynamic);
        q.put("sym", opt.symmetric());
        q.put("static_groups", true);
        q.put("true_sequential", opt.trueSequential());
        q.put("damp_percent", opt.percDamp());
        q.put("checkpoint_format", "gptq");
        ObjectNode c = q.putObject("casp");
        c.put("version", FORMAT_VERSION);
        c.put("method", opt.method());
        c.put("backend", "gptq-v1");
        perLinear(c, source, results, true);
        calibration(c, opt);
        return q;
    }

    /**
     * casp.bits (each linear's width, by tensor prefix), with group sizes casp.group_size (a scalar
     * grid's), and casp.low_rank for the projections stored as factors ({@link #lowRankEntry}).
     */
    static void perLinear(ObjectNode c, ModelFolder source, List<LinearResult> results, boolean groupSizes) {
        ObjectNode bits = c.putObject("bits"), groups = groupSizes ? c.putObject("group_size") : null;
        ObjectNode lowRank = null;
        for (LinearResult r : results) {
            String p = source.layer(r.layer(), r.name());
            if (r.lowRank() != null) { // casp: the widths of the factor tensors, and the rank
                if (lowRank == null) lowRank = c.putObject("low_rank");
                lowRankEntry(lowRank, bits, p, r.lowRank());
                continue;
            }
            bits.put(p, r.bits());
            if (groups != null) groups.put(p, r.groupSize());
        }
    }

    /** casp.calibration: samples, seq_len and seed of the calibration set. */
    static void calibration(ObjectNode c, CompressionOptions opt) {
        ObjectNode cal = c.putObject("calibration");
        cal.put("samples", opt.samples());
        cal.put("seq_len", opt.seqLen());
        cal.put("seed", opt.seed());
    }

    /**
     * quantization_config of a QuIP# folder: quant_method "quip#", codebook "E8P12" (3 / 4 bits:
     * "E8P12RVQ3B" / "E8P12RVQ4B", the names of QuIP#'s reference), bits,
     * the sign and transform conventions (see casp.model.QuipLinear), and the "casp" object
     * (version, method, backend "e8p12", per-linear bits, calibration) as for GPTQ. For CASP
     * (--backend quip) the top-level codebook and bits are the target's; each linear's width is in
     * casp.bits (a reader takes the residual stage from the qidxs2 tensor), the factors' ranks and
     * formats in casp.low_rank.
     */
    static ObjectNode quipConfig(ModelFolder source, CompressionOptions opt, List<LinearResult> results) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("quant_method", QuipLinear.METHOD);
        q.put("codebook", opt.bits() == 2 ? "E8P12" : opt.bits() == 3 ? "E8P12RVQ3B" : "E8P12RVQ4B");
        q.put("bits", opt.bits());
        q.put("incoherence", "random signs + Hadamard (Sylvester x Paley), inputs padded to a multiple of 8");
        q.put("true_sequential", opt.trueSequential());
        ObjectNode c = q.putObject("casp");
        c.put("version", FORMAT_VERSION);
        c.put("method", opt.method());
        c.put("backend", "e8p12");
        perLinear(c, source, results, false); // --backend quip: q/k factors as QuIP# codes, or GPTQ at widths QuIP# lacks
        calibration(c, opt);
        return q;
    }

    /**
     * casp's record of one low-rank projection: its rank (which QuIP#'s padded codes do not show; the
     * loader reads it here), each factor's width and storage format ("gptq-v1", "quip#", "float32"),
     * and the quantized factors' widths under their tensor prefixes in bits. (Also used by {@link AqlmFormat}.)
     */
    static void lowRankEntry(ObjectNode lowRank, ObjectNode bits, String p, LowRankFactors f) {
        lowRank.putObject(p).put("rank", f.rank()).put("a_bits", f.aBits()).put("b_bits", f.bBits())
                .put("a_format", f.aFormat()).put("b_format", f.bFormat());
        if (f.aBits() > 0) bits.put(LowRankLinear.uPrefix(p), f.aBits());
        if (f.bBits() > 0) bits.put(LowRankLinear.vPrefix(p), f.bBits());
    }

    static int mostCommon(Map<Integer, Long> weightByValue, int fallback) {
        return weightByValue.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(fallback);
    }

    /** Removes a file or folder tree if it exists. */
    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(q);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    static void deleteQuietly(Path p) {
        try {
            deleteTree(p);
        } catch (IOException | RuntimeException ignored) {
            // best effort while failing or shutting down
        }
    }
}
