package casp.compress;

import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.CaspOnlyFolder;
import casp.io.ModelFolder;
import casp.io.SafeTensorsWriter;
import casp.io.WeightStore;
import casp.quant.CompressedLayer;
import casp.quant.QuantizationConfig;
import casp.quant.aqlm.Aqlm;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.aqlm.AqlmWeight;
import casp.quant.gptq.QuantizedWeight;
import casp.quant.lowrank.LowRankLayer;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.quip.QuipLayer;
import casp.quant.quip.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Writes a compressed model as a Hugging Face-style folder (ALGORITHMS.md section 10):
 * <ul>
 *   <li>config.json: the source's, plus "quantization_config" ({@link #quantizationConfig}); for
 *       a folder other loaders would misread (see {@link #caspOnly}) a model_type and architecture
 *       of casp's own ({@link CaspOnlyFolder}), so they refuse it;</li>
 *   <li>model.safetensors (or shards of at most 4 GiB with model.safetensors.index.json): for each
 *       compressed linear the tensors of its storage format ({@link CompressedLayer#write}) in place
 *       of {@code <name>.weight} (its bias is kept); every other tensor copied byte for byte;</li>
 *   <li>the tokenizer, preprocessor, generation and chat-template files, copied;</li>
 *   <li>casp-report.json, with the SHA-256 of every tensor and file ({@link FolderChecksums}).</li>
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
            "processor_config.json", "video_preprocessor_config.json", "chat_template.json", "chat_template.jinja", "vocab.json",
            "merges.txt");

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
    public static long write(ModelFolder source, List<LinearResult> results, QuantizationConfig qconfig, JsonNode report,
                             Path out, boolean force) throws IOException {
        return write(source, results, qconfig, report, out, force, null);
    }

    static long write(ModelFolder source, List<LinearResult> results, QuantizationConfig qconfig, JsonNode report,
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

    private static long writeInto(Path dir, ModelFolder source, List<LinearResult> results, QuantizationConfig qconfig,
                                  JsonNode report) throws IOException {
        ObjectMapper json = new ObjectMapper();
        // config.json: the original plus quantization_config.
        ObjectNode config = (ObjectNode) source.config().raw().deepCopy();
        config.set("quantization_config", withDynamic(qconfig.toJson(), source, results));
        if (caspOnly(results)) CaspOnlyFolder.mark(config); // other loaders would misread it: make them refuse it
        Files.write(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(config));

        // model.safetensors: quantized linears replaced, everything else copied.
        Map<String, LinearResult> byPrefix = new HashMap<>();
        for (LinearResult r : results) {
            if (r.stored() == null) throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " has no stored form");
            byPrefix.put(source.layer(r.layer(), r.name()), r);
        }
        WeightStore w = source.weights();
        SafeTensorsWriter st = new SafeTensorsWriter().metadata("format", "pt");
        int replaced = 0;
        for (String name : w.names()) {
            String prefix = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
            LinearResult r = prefix == null ? null : byPrefix.get(prefix);
            if (r == null) {
                st.copy(w.file(name), name);
                continue;
            }
            r.stored().write(st, prefix); // the compressed tensors in place of prefix.weight (its bias is kept)
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
        FolderChecksums.addTo(report, dir); // for `casp verify`
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
            if (r.lowRank() != null || r.stored() instanceof QuipLayer) return true;
            if (r.stored() instanceof AqlmWeight a) counts.add(a.numCodebooks);
        }
        return counts.size() > 1;
    }

    /** Whether any GPTQ linear's g_idx is not the sequential one (act-order without static groups). */
    static boolean anyActOrder(List<LinearResult> results) {
        for (LinearResult r : results) {
            if (!(r.stored() instanceof QuantizedWeight q)) continue;
            int size = (q.gIdx.length + q.groups() - 1) / Math.max(1, q.groups());
            for (int c = 0; c < q.gIdx.length; c++) if (q.gIdx[c] != c / size) return true;
        }
        return false;
    }

    /**
     * A GPTQ quantization_config with GPTQModel's per-module overrides added for the GPTQ linears
     * whose width or group size differs from the top-level ones ("+:^" + escaped module name + "$"
     * -> {"bits", "group_size"}), so GPTQModel and transformers size each module's tensors right;
     * other configs unchanged.
     */
    static ObjectNode withDynamic(ObjectNode q, ModelFolder source, List<LinearResult> results) {
        if (!q.path("quant_method").asText().equals("gptq")) return q;
        int bits = q.path("bits").asInt(), groupSize = q.path("group_size").asInt();
        ObjectNode d = new ObjectMapper().createObjectNode();
        for (LinearResult r : results) {
            if (!(r.stored() instanceof QuantizedWeight w) || w.bits == bits && r.groupSize() == groupSize) continue;
            d.putObject("+:^" + source.layer(r.layer(), r.name()).replace(".", "\\.") + "$").put("bits", w.bits).put("group_size", r.groupSize());
        }
        if (d.size() > 0) q.set("dynamic", d);
        return q;
    }

    /**
     * quantization_config for the results, in the form readers of the method expect, plus casp's
     * own "casp" object (version, method, backend, per-linear widths by tensor prefix, low-rank
     * factors, calibration settings):
     * <ul>
     *   <li>rtn / gptq: AutoGPTQ's fields (quant_method "gptq", bits, group_size, desc_act (true only
     *       when some g_idx is not in input order), sym, static_groups, true_sequential, damp_percent,
     *       checkpoint_format "gptq" = v1); the top-level bits and group_size are those of most
     *       weights, each linear's in casp.bits / casp.group_size (and, written with the folder, in
     *       GPTQModel's "dynamic": see {@link #withDynamic});</li>
     *   <li>quip: quant_method "quip#", codebook "E8P12" (3 / 4 bits: "E8P12RVQ3B" / "E8P12RVQ4B",
     *       the names of QuIP#'s reference), bits, the sign and transform conventions
     *       (casp.quant.quip.QuipLinear); a reader takes each linear's residual stage from its qidxs2;</li>
     *   <li>aqlm: {@link #aqlmConfig}.</li>
     * </ul>
     */
    public static QuantizationConfig quantizationConfig(ModelFolder source, CompressionOptions opt, List<LinearResult> results) {
        if (opt.method().equals("aqlm")) return aqlmConfig(source, opt, results);
        QuantizationConfig.Calibration cal = new QuantizationConfig.Calibration(opt.samples(), opt.seqLen(), opt.seed());
        Map<String, Integer> bits = new LinkedHashMap<>();
        if (opt.isQuip()) {
            Map<String, QuantizationConfig.LowRankEntry> lowRank = lowRankEntries(source, results, bits, null);
            QuantizationConfig.QuipFields q = new QuantizationConfig.QuipFields(
                    opt.bits() == 2 ? "E8P12" : opt.bits() == 3 ? "E8P12RVQ3B" : "E8P12RVQ4B", opt.bits(),
                    "random signs + Hadamard (Sylvester x Paley), inputs padded to a multiple of 8", opt.trueSequential());
            return new QuantizationConfig(QuipLinear.METHOD, null, q, null, new QuantizationConfig.Casp(FORMAT_VERSION, opt.method(),
                    "e8p12", null, bits, null, lowRank, null, cal, null));
        }
        Map<Integer, Long> bitsWeight = new LinkedHashMap<>(), groupWeight = new LinkedHashMap<>();
        for (LinearResult r : results) {
            if (r.lowRank() != null) continue; // casp factors are listed on their own
            bitsWeight.merge(r.bits(), r.weights(), Long::sum);
            groupWeight.merge(r.groupSize(), r.weights(), Long::sum);
        }
        Map<String, Integer> groups = new LinkedHashMap<>();
        Map<String, QuantizationConfig.LowRankEntry> lowRank = lowRankEntries(source, results, bits, groups);
        // act-order with static groups keeps every g_idx in input order: desc_act is false then
        QuantizationConfig.GptqFields g = new QuantizationConfig.GptqFields(mostCommon(bitsWeight, opt.bits()), mostCommon(groupWeight, -1),
                anyActOrder(results), opt.symmetric(), true, opt.trueSequential(), opt.percDamp(), "gptq");
        return new QuantizationConfig("gptq", g, null, null, new QuantizationConfig.Casp(FORMAT_VERSION, opt.method(), "gptq-v1", null,
                bits, groups, lowRank, null, cal, null));
    }

    /**
     * Each linear's width into bits (a scalar grid's group size into groups), by tensor prefix;
     * returns the low-rank projections (rank, factor widths and formats; their quantized factors'
     * widths go into bits under the factor prefixes), or null when there are none.
     */
    static Map<String, QuantizationConfig.LowRankEntry> lowRankEntries(ModelFolder source, List<LinearResult> results,
                                                                     Map<String, Integer> bits, Map<String, Integer> groups) {
        Map<String, QuantizationConfig.LowRankEntry> lowRank = null;
        for (LinearResult r : results) {
            String p = source.layer(r.layer(), r.name());
            LowRankLayer f = r.lowRank();
            if (f != null) {
                if (lowRank == null) lowRank = new LinkedHashMap<>();
                lowRank.put(p, lowRankEntry(f));
                if (f.aBits() > 0) bits.put(LowRankLinear.uPrefix(p), f.aBits());
                if (f.bBits() > 0) bits.put(LowRankLinear.vPrefix(p), f.bBits());
                continue;
            }
            bits.put(p, r.bits());
            if (groups != null) groups.put(p, r.groupSize());
        }
        return lowRank;
    }

    /** casp's record of one low-rank projection. */
    static QuantizationConfig.LowRankEntry lowRankEntry(LowRankLayer f) {
        return new QuantizationConfig.LowRankEntry(f.rank(), f.aBits(), f.bBits(), f.aFormat(), f.bFormat());
    }

    /**
     * quantization_config of an AQLM folder (tensors: casp.quant.aqlm.AqlmTensors), in Hugging
     * Face's "aqlm" form so AQLM-aware readers recognise it: nbits_per_codebook, num_codebooks,
     * in_group_size 8, out_group_size 1, linear_weights_not_to_quantize (every ".weight" tensor left
     * as it was, and the output head: Hugging Face replaces every other nn.Linear by an AQLM layer),
     * plus casp's object with the quantizer's search settings.
     *
     * <p>CASP folders (--backend aqlm) differ: the linears have different widths, so different codebook
     * counts at one codebook size (num_codebooks at the top is that of most weights; each linear's width
     * is in casp.bits, and its count is width x 8 / nbits_per_codebook, which the AQLM loader reads), and
     * q/k are low-rank factors (casp.low_rank; a factor is AQLM codes or per-channel GPTQ tensors).
     * Hugging Face's AQLM reader, which assumes one configuration, cannot load such a folder; casp can.
     */
    static QuantizationConfig aqlmConfig(ModelFolder source, CompressionOptions opt, List<LinearResult> results) {
        Aqlm.Options a = opt.aqlmOptions();
        Set<String> replaced = new HashSet<>();
        Map<Integer, Long> byCount = new TreeMap<>();
        boolean casp = false;
        for (LinearResult r : results) {
            replaced.add(source.layer(r.layer(), r.name()) + ".weight");
            if (r.lowRank() != null) { // casp: q/k as factors
                casp = true;
                continue;
            }
            if (!(r.stored() instanceof AqlmWeight aw))
                throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " is not an AQLM result");
            if (aw.codebookBits != a.codebookBits())
                throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " has another codebook size");
            if (aw.numCodebooks != a.numCodebooks()) casp = true; // casp: widths allocated per linear
            byCount.merge(aw.numCodebooks, (long) r.rows() * r.cols(), Long::sum);
        }
        int numCodebooks = casp ? mostCommon(byCount, a.numCodebooks()) : a.numCodebooks();
        Set<String> keep = new TreeSet<>();
        for (String name : source.weights().names()) if (name.endsWith(".weight") && !replaced.contains(name)) keep.add(name);
        keep.add(source.headTied() ? (source.textPrefix().equals("language_model.model.") ? "language_model.lm_head.weight" : "lm_head.weight")
                : source.lmHead());
        QuantizationConfig.AqlmFields f = new QuantizationConfig.AqlmFields(a.codebookBits(), numCodebooks, AqlmTensors.IN_GROUP, 1,
                new ArrayList<>(keep));
        Map<String, Integer> bits = new LinkedHashMap<>();
        Map<String, QuantizationConfig.LowRankEntry> lowRank = lowRankEntries(source, results, bits, null);
        QuantizationConfig.AqlmSearch search = new QuantizationConfig.AqlmSearch(a.beamWidth(), a.iterations(), a.kmeansIterations(),
                a.relTolerance(), a.jointLimit(), a.seed());
        return new QuantizationConfig("aqlm", null, null, f, new QuantizationConfig.Casp(FORMAT_VERSION, "aqlm", "aqlm", "aqlm", bits, null,
                lowRank, search, new QuantizationConfig.Calibration(opt.samples(), opt.seqLen(), opt.seed()), null));
    }

    /** The value with the most weights (the first such when tied). */
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
