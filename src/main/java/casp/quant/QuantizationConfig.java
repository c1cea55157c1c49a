package casp.quant;

import casp.io.ModelFolder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * config.json's "quantization_config" of a compressed folder (ALGORITHMS.md section 10): the fields
 * of its quant_method that readers of that method expect (exactly one of gptq, quip, aqlm is set),
 * and casp's own "casp" object. {@link #read} is the one reader (lenient: folders of other tools
 * carry fields casp does not use, and the loaders check what they need), {@link #toJson} the one
 * writer.
 *
 * @param quantMethod "gptq", "quip#" or "aqlm" (any string when read)
 * @param gptq        quant_method gptq: the AutoGPTQ fields, else null
 * @param quip        quant_method quip#: the QuIP# fields, else null
 * @param aqlm        quant_method aqlm: Hugging Face's AQLM fields, else null
 * @param casp        the "casp" object, or null (a folder casp did not write)
 */
public record QuantizationConfig(String quantMethod, GptqFields gptq, QuipFields quip, AqlmFields aqlm, Casp casp) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** AutoGPTQ's fields; checkpointFormat "gptq" is v1. */
    public record GptqFields(int bits, int groupSize, boolean descAct, boolean sym, boolean staticGroups, boolean trueSequential,
                             double dampPercent, String checkpointFormat) {}

    /** QuIP#'s: codebook "E8P12" (2 bits), "E8P12RVQ3B" / "E8P12RVQ4B" (3 / 4 bits with the residual stage). */
    public record QuipFields(String codebook, int bits, String incoherence, boolean trueSequential) {}

    /** Hugging Face's AQLM fields (M codebooks of B bits over groups of inGroupSize inputs). */
    public record AqlmFields(int nbitsPerCodebook, int numCodebooks, int inGroupSize, int outGroupSize,
                             List<String> linearWeightsNotToQuantize) {}

    /**
     * casp's record of the run.
     *
     * @param method       "rtn", "gptq", "quip", "aqlm" or "casp"
     * @param backend      the tensors' backend ("gptq-v1", "e8p12", "aqlm"; casp: the backend method)
     * @param tensorFormat the storage format of the linears (casp and aqlm folders), else null
     * @param bits         each compressed tensor prefix's width (low-rank factors under their own prefixes)
     * @param groupSize    each scalar-grid prefix's group size (gptq-v1 folders), else null
     * @param lowRank      the projections stored as factors, by prefix (casp), else null
     * @param aqlmSearch   the AQLM quantizer's search settings (aqlm folders), else null
     * @param plan         CASP's settings (method casp), else null
     */
    public record Casp(int version, String method, String backend, String tensorFormat, Map<String, Integer> bits,
                       Map<String, Integer> groupSize, Map<String, LowRankEntry> lowRank, AqlmSearch aqlmSearch,
                       Calibration calibration, CaspSettings plan) {
        public Casp {
            bits = bits == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(bits));
            groupSize = groupSize == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(groupSize));
            lowRank = lowRank == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(lowRank));
        }

        /** The width recorded for a tensor prefix, or null. */
        public Integer bitsOf(String prefix) {
            return bits == null ? null : bits.get(prefix);
        }

        public Casp withMethod(String method, String tensorFormat, CaspSettings plan) {
            return new Casp(version, method, backend, tensorFormat, bits, groupSize, lowRank, aqlmSearch, calibration, plan);
        }

        public Casp withBits(Map<String, Integer> bits) {
            return new Casp(version, method, backend, tensorFormat, bits, groupSize, lowRank, aqlmSearch, calibration, plan);
        }

        public Casp withBackend(String backend) {
            return new Casp(version, method, backend, tensorFormat, bits, groupSize, lowRank, aqlmSearch, calibration, plan);
        }
    }

    /** One low-rank projection: its rank (which padded codes do not show), each factor's width and format name. */
    public record LowRankEntry(Integer rank, int aBits, int bBits, String aFormat, String bFormat) {}

    /** AQLM's search settings. */
    public record AqlmSearch(int beamWidth, int iterations, int kmeansIterations, double relTolerance, int jointLimit, long seed) {}

    /** The calibration set's size and seed. */
    public record Calibration(int samples, int seqLen, long seed) {}

    /** CASP's settings (codebookBits only with the aqlm backend). */
    public record CaspSettings(Integer codebookBits, String budgetRule, String rankRule, double rankRatio, String allocation,
                               String allocationUnit, int factorBits, int aBits, boolean rotate) {}

    public QuantizationConfig withCasp(Casp c) {
        return new QuantizationConfig(quantMethod, gptq, quip, aqlm, c);
    }

    public QuantizationConfig withAqlm(AqlmFields a) {
        return new QuantizationConfig(quantMethod, gptq, quip, a, casp);
    }

    /** The width of the linear under prefix: casp.bits when it records one, else the top-level bits (-1 when none). */
    public int bitsOf(String prefix) {
        Integer b = casp == null ? null : casp.bitsOf(prefix);
        if (b != null) return b;
        return gptq != null ? gptq.bits() : quip != null ? quip.bits() : -1;
    }

    /** Whether casp wrote the folder with method casp (formats may be mixed there). */
    public boolean isCasp() {
        return casp != null && "casp".equals(casp.method());
    }

    /** The folder's quantization_config, or null when config.json has none. */
    public static QuantizationConfig of(ModelFolder folder) {
        JsonNode q = folder.config().quantization();
        return q == null ? null : read(q);
    }

    /** Reads a quantization_config object. Missing numbers read as -1, missing strings as "". */
    public static QuantizationConfig read(JsonNode q) {
        String method = q.path("quant_method").asText("");
        GptqFields g = null;
        QuipFields p = null;
        AqlmFields a = null;
        switch (method) {
            case "gptq" -> g = new GptqFields(q.path("bits").asInt(-1), q.path("group_size").asInt(-1), q.path("desc_act").asBoolean(false),
                    q.path("sym").asBoolean(false), q.path("static_groups").asBoolean(false), q.path("true_sequential").asBoolean(false),
                    q.path("damp_percent").asDouble(Double.NaN), q.path("checkpoint_format").asText("gptq"));
            case "quip#" -> p = new QuipFields(q.path("codebook").asText(""), q.path("bits").asInt(-1), q.path("incoherence").asText(""),
                    q.path("true_sequential").asBoolean(false));
            case "aqlm" -> {
                List<String> keep = new ArrayList<>();
                for (JsonNode n : q.path("linear_weights_not_to_quantize")) keep.add(n.asText());
                a = new AqlmFields(q.path("nbits_per_codebook").asInt(-1), q.path("num_codebooks").asInt(-1),
                        q.path("in_group_size").asInt(-1), q.path("out_group_size").asInt(-1), keep);
            }
            default -> { }
        }
        JsonNode c = q.get("casp");
        return new QuantizationConfig(method, g, p, a, c == null || !c.isObject() ? null : readCasp(c));
    }

    private static Casp readCasp(JsonNode c) {
        Map<String, LowRankEntry> lowRank = null;
        if (c.has("low_rank")) {
            lowRank = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : c.get("low_rank").properties()) {
                JsonNode x = e.getValue();
                JsonNode r = x.get("rank");
                lowRank.put(e.getKey(), new LowRankEntry(r != null && r.canConvertToInt() ? r.asInt() : null, x.path("a_bits").asInt(0),
                        x.path("b_bits").asInt(0), x.path("a_format").asText(""), x.path("b_format").asText("")));
            }
        }
        AqlmSearch search = null;
        if (c.has("aqlm")) {
            JsonNode s = c.get("aqlm");
            search = new AqlmSearch(s.path("beam_width").asInt(-1), s.path("iterations").asInt(-1), s.path("kmeans_iterations").asInt(-1),
                    s.path("rel_tolerance").asDouble(Double.NaN), s.path("joint_limit").asInt(-1), s.path("seed").asLong(0));
        }
        JsonNode cal = c.path("calibration");
        Calibration calibration = cal.isObject() ? new Calibration(cal.path("samples").asInt(-1), cal.path("seq_len").asInt(-1),
                cal.path("seed").asLong(0)) : null;
        CaspSettings plan = null;
        if (c.has("budget_rule")) {
            plan = new CaspSettings(c.has("codebook_bits") ? c.get("codebook_bits").asInt() : null, c.path("budget_rule").asText(""),
                    c.path("rank_rule").asText(""), c.path("rank_ratio").asDouble(Double.NaN), c.path("allocation").asText(""),
                    c.path("allocation_unit").asText(""), c.path("factor_bits").asInt(-1), c.path("a_bits").asInt(-1),
                    c.path("rotate").asBoolean(false));
        }
        return new Casp(c.path("version").asInt(-1), c.path("method").asText(""), c.path("backend").asText(""),
                c.has("tensor_format") ? c.get("tensor_format").asText() : null, ints(c.get("bits")), ints(c.get("group_size")),
                lowRank, search, calibration, plan);
    }

    /** An object of integers; entries that are not integers are left out (the loaders then report them missing). */
    private static Map<String, Integer> ints(JsonNode n) {
        if (n == null || !n.isObject()) return null;
        Map<String, Integer> m = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : n.properties()) if (e.getValue().canConvertToInt()) m.put(e.getKey(), e.getValue().asInt());
        return m;
    }

    /** The JSON object written into config.json. */
    public ObjectNode toJson() {
        ObjectNode q = JSON.createObjectNode();
        q.put("quant_method", quantMethod);
        if (gptq != null) {
            q.put("bits", gptq.bits());
            q.put("group_size", gptq.groupSize());
            q.put("desc_act", gptq.descAct());
            q.put("sym", gptq.sym());
            q.put("static_groups", gptq.staticGroups());
            q.put("true_sequential", gptq.trueSequential());
            q.put("damp_percent", gptq.dampPercent());
            q.put("checkpoint_format", gptq.checkpointFormat());
        }
        if (quip != null) {
            q.put("codebook", quip.codebook());
            q.put("bits", quip.bits());
            q.put("incoherence", quip.incoherence());
            q.put("true_sequential", quip.trueSequential());
        }
        if (aqlm != null) {
            q.put("nbits_per_codebook", aqlm.nbitsPerCodebook());
            q.put("num_codebooks", aqlm.numCodebooks());
            q.put("in_group_size", aqlm.inGroupSize());
            q.put("out_group_size", aqlm.outGroupSize());
            ArrayNode k = q.putArray("linear_weights_not_to_quantize");
            aqlm.linearWeightsNotToQuantize().forEach(k::add);
        }
        if (casp != null) q.set("casp", caspJson(casp));
        return q;
    }

    private static ObjectNode caspJson(Casp c) {
        ObjectNode o = JSON.createObjectNode();
        o.put("version", c.version());
        o.put("method", c.method());
        o.put("backend", c.backend());
        // AQLM folders name their tensor format beside the backend, CASP folders of the other backends after the calibration.
        boolean formatFirst = c.tensorFormat() != null && c.backend().equals("aqlm");
        if (formatFirst) o.put("tensor_format", c.tensorFormat());
        if (c.bits() != null) c.bits().forEach(o.putObject("bits")::put);
        if (c.groupSize() != null) c.groupSize().forEach(o.putObject("group_size")::put);
        if (c.lowRank() != null) {
            ObjectNode lr = o.putObject("low_rank");
            c.lowRank().forEach((p, e) -> {
                ObjectNode x = lr.putObject(p);
                if (e.rank() != null) x.put("rank", e.rank());
                x.put("a_bits", e.aBits()).put("b_bits", e.bBits()).put("a_format", e.aFormat()).put("b_format", e.bFormat());
            });
        }
        if (c.aqlmSearch() != null) {
            AqlmSearch s = c.aqlmSearch();
            ObjectNode x = o.putObject("aqlm");
            x.put("beam_width", s.beamWidth());
            x.put("iterations", s.iterations());
            x.put("kmeans_iterations", s.kmeansIterations());
            x.put("rel_tolerance", s.relTolerance());
            x.put("joint_limit", s.jointLimit());
            x.put("seed", s.seed());
        }
        if (c.calibration() != null) {
            ObjectNode cal = o.putObject("calibration");
            cal.put("samples", c.calibration().samples());
            cal.put("seq_len", c.calibration().seqLen());
            cal.put("seed", c.calibration().seed());
        }
        if (c.tensorFormat() != null && !formatFirst) o.put("tensor_format", c.tensorFormat());
        CaspSettings s = c.plan();
        if (s != null) {
            if (s.codebookBits() != null) o.put("codebook_bits", s.codebookBits());
            o.put("budget_rule", s.budgetRule());
            o.put("rank_rule", s.rankRule());
            o.put("rank_ratio", s.rankRatio());
            o.put("allocation", s.allocation());
            o.put("allocation_unit", s.allocationUnit());
            o.put("factor_bits", s.factorBits());
            o.put("a_bits", s.aBits());
            o.put("rotate", s.rotate());
        }
        return o;
    }
}
