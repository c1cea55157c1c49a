package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The GPTQ settings of a model folder, as AutoGPTQ, GPTQModel, transformers and casp write them:
 * config.json's "quantization_config", or AutoGPTQ's quantize_config.json beside a config.json
 * without one.
 * <ul>
 *   <li>bits, group_size (-1: one group per row), desc_act, sym;</li>
 *   <li>checkpoint_format: "gptq" (v1, zero points stored minus one) or "gptq_v2" (stored as they are);</li>
 *   <li>pack_dtype: the integer words codes are packed in, "int32" (default), "int8", "int16", "int64";</li>
 *   <li>dynamic: GPTQModel's per-module overrides, an ordered map from a regular expression over the
 *       module name (e.g. "model.layers.3.mlp.down_proj") to overridden settings (bits, group_size).
 *       The first pattern that matches the start of the name wins; a pattern written "-:regex"
 *       leaves the modules it matches unquantized, "+:regex" is the same as "regex";</li>
 *   <li>lm_head: whether the output head is quantized too;</li>
 *   <li>casp.bits / casp.group_size: casp's own per-linear widths by tensor prefix (its older
 *       folders), taking precedence over everything else.</li>
 * </ul>
 */
public final class GptqConfig {
    /** The file AutoGPTQ writes its settings to. */
    public static final String AUTOGPTQ_FILE = "quantize_config.json";

    private final String where;
    private final JsonNode node;
    private final int bits, groupSize, packBits;
    private final boolean v1, lmHead;
    private final List<Rule> dynamic;

    /** One entry of the dynamic map. */
    private record Rule(String text, Pattern pattern, boolean exclude, JsonNode overrides) {}

    /** The settings of one quantized module. */
    public record Module(int bits, int groupSize) {}

    private GptqConfig(String where, JsonNode node, int bits, int groupSize, int packBits, boolean v1, boolean lmHead,
                       List<Rule> dynamic) {
        this.where = where;
        this.node = node;
        this.bits = bits;
        this.groupSize = groupSize;
        this.packBits = packBits;
        this.v1 = v1;
        this.lmHead = lmHead;
        this.dynamic = dynamic;
    }

    /**
     * The folder's quantization_config, else its quantize_config.json, else null. Does not check
     * quant_method (casp's own mixed folders need not say "gptq").
     */
    public static JsonNode settings(ModelFolder folder) {
        JsonNode qc = folder.config().quantization();
        if (qc != null) return qc;
        Path f = folder.file(AUTOGPTQ_FILE);
        if (!Files.isRegularFile(f)) return null;
        try {
            JsonNode n = new ObjectMapper().readTree(f.toFile());
            if (n == null || !n.isObject()) throw new BadInputException(f + ": not a JSON object");
            return n;
        } catch (IOException e) {
            throw new BadInputException(f + ": not valid JSON: " + e.getMessage());
        }
    }

    /** Where the settings came from, for messages. */
    public static String source(ModelFolder folder) {
        return folder.config().quantization() != null ? folder.config().file() + " quantization_config"
                : folder.file(AUTOGPTQ_FILE).toString();
    }

    /** Parses the settings; every unsupported value is a {@link BadInputException} naming the field. */
    public static GptqConfig parse(JsonNode qc, String where) {
        String format = qc.path("checkpoint_format").asText(qc.path("format").asText("gptq"));
        boolean v1;
        if (format.equals("gptq")) v1 = true;
        else if (format.equals("gptq_v2")) v1 = false;
        else throw new BadInputException(where + ": checkpoint_format '" + format + "' is not supported (gptq, gptq_v2)");
        String pack = qc.path("pack_dtype").asText("int32");
        int packBits = switch (pack) {
            case "int8" -> 8;
            case "int16" -> 16;
            case "int32" -> 32;
            case "int64" -> 64;
            default -> throw new BadInputException(where + ": pack_dtype '" + pack + "' is not supported (int8, int16, int32, int64)");
        };
        int bits = qc.path("bits").asInt(-1);
        int groupSize = qc.path("group_size").asInt(-1);
        List<Rule> rules = new ArrayList<>();
        JsonNode dyn = qc.get("dynamic");
        if (dyn != null && !dyn.isNull()) {
            if (!dyn.isObject()) throw new BadInputException(where + ": dynamic must be an object of pattern -> overrides");
            for (Iterator<Map.Entry<String, JsonNode>> it = dyn.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String key = e.getKey();
                boolean exclude = key.startsWith("-:");
                String regex = key.startsWith("-:") || key.startsWith("+:") ? key.substring(2) : key;
                try {
                    rules.add(new Rule(key, Pattern.compile(regex), exclude, e.getValue()));
                } catch (PatternSyntaxException ex) {
                    throw new BadInputException(where + ": dynamic pattern '" + key + "' is not a valid regular expression");
                }
            }
        }
        return new GptqConfig(where, qc, bits, groupSize, packBits, v1, qc.path("lm_head").asBoolean(false), rules);
    }

    /** Reads and parses the folder's settings, or null when it has none. */
    public static GptqConfig of(ModelFolder folder) {
        JsonNode qc = settings(folder);
        return qc == null ? null : parse(qc, source(folder));
    }

    /** The settings object as read. */
    public JsonNode node() { return node; }

    /** True for checkpoint_format "gptq" (v1). */
    public boolean v1() { return v1; }

    /** Bits of one packed word: 8, 16, 32 or 64. */
    public int packBits() { return packBits; }

    /** Whether the output head is stored quantized. */
    public boolean lmHead() { return lmHead; }

    /** quant_method, "" when absent (AutoGPTQ's quantize_config.json files before it had one). */
    public String method() { return node.path("quant_method").asText(""); }

    /**
     * The settings of the module named prefix, or null when a "-:" dynamic rule leaves it
     * unquantized. Widths outside 2, 3, 4, 8 are a {@link BadInputException}.
     */
    public Module module(String prefix) {
        int b = bits, g = groupSize;
        JsonNode casp = node.path("casp");
        JsonNode cb = casp.path("bits").get(prefix);
        if (cb != null) {
            b = cb.asInt();
            JsonNode cg = casp.path("group_size").get(prefix);
            if (cg != null) g = cg.asInt();
        } else {
            for (Rule r : dynamic) {
                if (!r.pattern.matcher(prefix).lookingAt()) continue;
                if (r.exclude) return null;
                b = r.overrides.path("bits").asInt(b);
                g = r.overrides.path("group_size").asInt(g);
                break;
            }
        }
        if (b != 2 && b != 3 && b != 4 && b != 8)
            throw new BadInputException(where + " gives " + prefix + " " + b + " bits; supported are 2, 3, 4, 8");
        return new Module(b, g);
    }
}
