package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The marking of a folder that only casp can run correctly (CASP's low-rank q/k factors, casp's
 * QuIP# layout, AQLM with per-linear codebook counts): config.json's model_type becomes
 * "casp_" + the original (e.g. casp_llama, casp_llava) and each architecture "Casp" + the original
 * (CaspLlamaForCausalLM). transformers (AutoConfig), vLLM, AutoGPTQ and GPTQModel all look the
 * model type or architecture up before reading any weight and refuse one they do not know, so such
 * a folder fails there with an error instead of loading with randomly initialised or misread
 * weights. The originals are kept in quantization_config.casp.original_model_type /
 * original_architectures; `casp export` writes standard folders those tools run.
 */
public final class CaspOnlyFolder {
    private CaspOnlyFolder() {}

    public static final String TYPE_PREFIX = "casp_", ARCH_PREFIX = "Casp";

    /** Marks config (a config.json object holding its quantization_config). */
    public static void mark(ObjectNode config) {
        String type = config.path("model_type").asText("");
        if (type.startsWith(TYPE_PREFIX)) return;
        JsonNode qc = config.get("quantization_config");
        ObjectNode casp = qc instanceof ObjectNode q ? (q.get("casp") instanceof ObjectNode c ? c : q.putObject("casp")) : null;
        if (casp != null) {
            casp.put("original_model_type", type);
            if (config.get("architectures") != null) casp.set("original_architectures", config.get("architectures").deepCopy());
        }
        config.put("model_type", TYPE_PREFIX + type);
        if (config.get("architectures") instanceof ArrayNode a) {
            ArrayNode marked = config.putArray("architectures");
            for (JsonNode n : a) marked.add(ARCH_PREFIX + n.asText());
        }
    }

    /** Whether a model_type is a marked one. */
    public static boolean isMarked(String modelType) {
        return modelType.startsWith(TYPE_PREFIX);
    }

    /** The model_type casp reads a folder as: the original for a marked one. */
    public static String readAs(String modelType) {
        return isMarked(modelType) ? modelType.substring(TYPE_PREFIX.length()) : modelType;
    }

    /** config with the marking undone (model_type and architectures as they were), for a standard folder. */
    public static ObjectNode unmarked(ObjectNode config) {
        ObjectNode c = config.deepCopy();
        c.put("model_type", readAs(c.path("model_type").asText("")));
        JsonNode arch = c.path("quantization_config").path("casp").get("original_architectures");
        if (arch != null) c.set("architectures", arch.deepCopy());
        else if (c.get("architectures") instanceof ArrayNode a) {
            ArrayNode plain = c.putArray("architectures");
            for (JsonNode n : a) plain.add(n.asText().startsWith(ARCH_PREFIX) ? n.asText().substring(ARCH_PREFIX.length()) : n.asText());
        }
        return c;
    }
}
