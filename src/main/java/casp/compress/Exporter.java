package casp.compress;

import casp.io.BadInputException;
import casp.io.CaspOnlyFolder;
import casp.io.GptqConfig;
import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.io.SafeTensorsWriter;
import casp.io.WeightStore;
import casp.model.DecoderLayer;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.gptq.GptqFormat;
import casp.quant.gptq.QuantizedWeight;
import casp.quant.gptq.Rtn;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.quip.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * `casp export`: turns a casp folder (CASP's low-rank q/k with GPTQ or AQLM linears, or a plain
 * casp GPTQ / AQLM folder) into a standard folder that transformers, vLLM, GPTQModel or the aqlm
 * package run:
 * <ul>
 *   <li>each low-rank projection becomes one linear with the weight A B the factors stand for
 *       (computed by running the factors on the identity, as casp's runtime does): a 16-bit fp16
 *       .weight by default, or (GPTQ, qkBits > 0) a round-to-nearest GPTQ linear of that width
 *       with groups of 128, which AutoGPTQ also loads but which adds a quantization error of its own;</li>
 *   <li>GPTQ: the quantized linears are copied byte for byte; widths and group sizes that differ
 *       from the top-level ones, and the 16-bit q/k, are given in GPTQModel's "dynamic" ("-:" for
 *       the unquantized ones); AutoGPTQ, which has no "dynamic", can only load uniform results;</li>
 *   <li>AQLM: the code tensors are copied; every AQLM linear must have the same codebook
 *       configuration (Hugging Face's aqlm reader takes one); the 16-bit q/k are listed in
 *       linear_weights_not_to_quantize;</li>
 *   <li>config.json: the original model_type and architectures (see {@link CaspOnlyFolder}).</li>
 * </ul>
 * QuIP# linears cannot be exported (casp's QuIP# layout is its own). The result reports the size
 * this costs: the q/k factors against their replacements, and both weights files.
 */
public final class Exporter {
    private Exporter() {}

    public enum Format { GPTQ, AQLM }

    /**
     * What an export wrote.
     *
     * @param lowRank       projections turned from factors into one linear
     * @param factorBytes   bytes of their factor tensors in the input
     * @param replacedBytes bytes of their replacements in the output
     * @param inputBytes    tensor bytes of the input folder
     * @param outputBytes   tensor bytes of the output folder
     */
    public record Result(int lowRank, long factorBytes, long replacedBytes, long inputBytes, long outputBytes) {}

    private static final int RTN_GROUP = 128;

    public static Result export(Path in, Path out, Format format, int qkBits, boolean force) throws IOException {
        if (qkBits != 0 && (format != Format.GPTQ || qkBits != 2 && qkBits != 3 && qkBits != 4 && qkBits != 8))
            throw new BadInputException("--qk-bits " + qkBits + ": give 2, 3, 4 or 8 with --format gptq, or 0 for 16-bit q/k");
        ModelFolder src = ModelFolder.open(in);
        JsonNode qc = src.config().quantization();
        if (qc == null) throw new BadInputException(in + ": config.json has no quantization_config; not a compressed folder");
        WeightStore w = src.weights();
        ModelConfig.TextConfig c = src.config().text();

        // Every decoder linear: its kind and shape.
        Map<String, int[]> shapes = new LinkedHashMap<>();
        for (int i = 0; i < c.numLayers(); i++) {
            for (String name : DecoderLayer.LINEARS) {
                int inDim = name.equals(DecoderLayer.O) ? c.qDim() : name.equals(DecoderLayer.DOWN) ? c.intermediateSize() : c.hiddenSize();
                int outDim = name.equals(DecoderLayer.Q) ? c.qDim() : name.equals(DecoderLayer.K) || name.equals(DecoderLayer.V) ? c.kvDim()
                        : name.equals(DecoderLayer.O) || name.equals(DecoderLayer.DOWN) ? c.hiddenSize() : c.intermediateSize();
                shapes.put(src.layer(i, name), new int[]{inDim, outDim});
            }
        }
        GptqConfig gptq = w.names().stream().anyMatch(n -> n.endsWith(".qweight")) ? GptqConfig.of(src) : null;
        SafeTensorsWriter st = new SafeTensorsWriter().metadata("format", "pt");
        Map<String, String> factorOwner = new LinkedHashMap<>(); // factor tensor prefix -> projection
        for (String p : shapes.keySet()) {
            if (!p.endsWith("q_proj") && !p.endsWith("k_proj")) continue;
            factorOwner.put(LowRankLinear.uPrefix(p), p);
            factorOwner.put(LowRankLinear.vPrefix(p), p);
        }
        int lowRank = 0;
        long factorBytes = 0, replacedBytes = 0, inputBytes = 0;
        ObjectNode dynamic = new ObjectMapper().createObjectNode();
        Map<Integer, Long> bitsWeight = new LinkedHashMap<>(), groupWeight = new LinkedHashMap<>();
        Map<String, GptqConfig.Module> gptqModules = new LinkedHashMap<>();
        TreeSet<String> aqlmConfigs = new TreeSet<>();
        List<String> unquantized = new java.util.ArrayList<>();
        java.util.Set<String> emitted = new java.util.HashSet<>();
        for (String name : w.names()) {
            inputBytes += w.info(name).byteSize();
            int dot = name.lastIndexOf('.');
            String prefix = dot < 0 ? name : name.substring(0, dot);
            String owner = factorOwner.get(prefix);
            if (owner != null) { // a factor of a low-rank projection: the projection replaces both
                factorBytes += w.info(name).byteSize();
                if (!emitted.add(owner)) continue;
                int[] s = shapes.get(owner);
                LowRankLinear lr = LowRankLinear.load(src, owner, s[0], s[1], null); // a q/k .bias is copied as it is

                if (lr == null) throw new BadInputException(in + ": tensor '" + name + "' has no partner factor");
                float[] weight = product(lr);
                lowRank++;
                long before = st.dataBytes();
                if (qkBits > 0) {
                    QuantizedWeight q = new Rtn(qkBits, RTN_GROUP, false, false).quantize(weight, s[1], s[0], null);
                    GptqFormat.write(st, owner, GptqFormat.pack(q));
                    gptqModules.put(owner, new GptqConfig.Module(qkBits, RTN_GROUP));
                } else {
                    st.addF16(owner + ".weight", new long[]{s[1], s[0]}, weight);
                    unquantized.add(owner);
                }
                replacedBytes += st.dataBytes() - before;
                continue;
            }
            if (name.endsWith("." + QuipLinear.QIDXS))
                throw new BadInputException(in + ": tensor '" + name + "' is QuIP# codes, which casp cannot export (casp's QuIP# layout is its own)");
            if (name.endsWith(".qweight")) {
                if (format == Format.AQLM)
                    throw new BadInputException(in + ": '" + prefix + "' is a GPTQ linear; --format aqlm exports AQLM folders only");
                gptqModules.put(prefix, gptq.module(prefix));
            }
            if (name.endsWith("." + AqlmTensors.CODES)) {
                if (format == Format.GPTQ)
                    throw new BadInputException(in + ": '" + prefix + "' is an AQLM linear; --format gptq exports GPTQ folders only");
                long[] cs = w.info(name).shape();
                aqlmConfigs.add(cs[2] + "x" + qc.path("nbits_per_codebook").asInt());
                if (aqlmConfigs.size() > 1)
                    throw new BadInputException(in + ": AQLM linears with different codebook counts (" + aqlmConfigs
                            + ", e.g. '" + prefix + "'); the aqlm format takes one configuration for every linear");
            }
            st.copy(w.file(name), name);
        }

        ObjectNode q = new ObjectMapper().createObjectNode();
        if (format == Format.GPTQ) {
            if (gptqModules.isEmpty()) throw new BadInputException(in + ": no GPTQ linears to export");
            for (var e : gptqModules.entrySet()) {
                int[] s = shapes.getOrDefault(e.getKey(), new int[]{0, 0});
                bitsWeight.merge(e.getValue().bits(), (long) s[0] * s[1], Long::sum);
                groupWeight.merge(e.getValue().groupSize(), (long) s[0] * s[1], Long::sum);
            }
            int bits = CompressedModelWriter.mostCommon(bitsWeight, 0), group = CompressedModelWriter.mostCommon(groupWeight, -1);
            q.put("quant_method", "gptq");
            q.put("bits", bits);
            q.put("group_size", group);
            q.put("desc_act", qc.path("desc_act").asBoolean(false));
            q.put("sym", qc.path("sym").asBoolean(false));
            q.put("checkpoint_format", "gptq");
            q.put("pack_dtype", "int32");
            for (String p : unquantized) dynamic.putObject("-:^" + p.replace(".", "\\.") + "$");
            for (var e : gptqModules.entrySet()) {
                if (e.getValue().bits() == bits && e.getValue().groupSize() == group) continue;
                dynamic.putObject("+:^" + e.getKey().replace(".", "\\.") + "$").put("bits", e.getValue().bits())
                        .put("group_size", e.getValue().groupSize());
            }
            if (dynamic.size() > 0) q.set("dynamic", dynamic);
        } else {
            if (aqlmConfigs.isEmpty()) throw new BadInputException(in + ": no AQLM linears to export");
            q.put("quant_method", "aqlm");
            q.put("nbits_per_codebook", qc.path("nbits_per_codebook").asInt());
            q.put("num_codebooks", Integer.parseInt(aqlmConfigs.first().split("x")[0]));
            q.put("in_group_size", qc.path("in_group_size").asInt(AqlmTensors.IN_GROUP));
            q.put("out_group_size", 1);
            ArrayNode keep = q.putArray("linear_weights_not_to_quantize");
            TreeSet<String> names = new TreeSet<>();
            for (String name : w.names()) if (name.endsWith(".weight") && factorOwner.get(name.substring(0, name.length() - 7)) == null) names.add(name);
            for (String p : unquantized) names.add(p + ".weight");
            names.add(src.headTied() ? src.textPrefix().equals("language_model.model.") ? "language_model.lm_head.weight" : "lm_head.weight" : src.lmHead());
            names.forEach(keep::add);
        }
        q.putObject("casp").put("exported_from", qc.path("casp").path("method").asText(qc.path("quant_method").asText()))
                .put("low_rank_projections", lowRank).put("qk", qkBits > 0 ? "gptq " + qkBits + "-bit round to nearest" : "float16");
        ObjectNode config = CaspOnlyFolder.unmarked((ObjectNode) src.config().raw());
        config.set("quantization_config", q);
        long outputBytes = st.dataBytes();
        writeFolder(src, st, config, out, force);
        return new Result(lowRank, factorBytes, replacedBytes, inputBytes, outputBytes);
    }

    /** W [out, in] of a low-rank layer: its forward pass on the rows of the identity gives the columns. */
    static float[] product(LowRankLinear lr) {
        int in = lr.in(), out = lr.out();
        float[] eye = new float[Math.multiplyExact(in, in)];
        for (int i = 0; i < in; i++) eye[i * in + i] = 1f;
        float[] cols = new float[Math.multiplyExact(in, out)];
        lr.forward(eye, 0, cols, 0, in);
        float[] w = new float[out * in];
        for (int c = 0; c < in; c++) for (int r = 0; r < out; r++) w[r * in + c] = cols[c * out + r];
        return w;
    }

    /** The folder under a temporary name beside out, renamed when complete. */
    private static void writeFolder(ModelFolder src, SafeTensorsWriter st, ObjectNode config, Path out, boolean force) throws IOException {
        out = out.toAbsolutePath().normalize();
        CompressedModelWriter.checkTarget(out, force);
        Files.createDirectories(out.getParent());
        Path tmp = out.resolveSibling("." + out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        CompressedModelWriter.deleteTree(tmp);
        boolean done = false;
        try {
            Files.createDirectory(tmp);
            Files.write(tmp.resolve("config.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(config));
            st.writeSharded(tmp, CompressedModelWriter.SHARD_BYTES);
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(src.dir())) {
                for (Path f : ds) {
                    if (Files.isRegularFile(f) && CompressedModelWriter.COPIED_FILES.contains(f.getFileName().toString()))
                        Files.copy(f, tmp.resolve(f.getFileName()));
                }
            }
            if (Files.exists(out)) CompressedModelWriter.deleteTree(out);
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            done = true;
        } finally {
            if (!done) CompressedModelWriter.deleteQuietly(tmp);
        }
    }
}
