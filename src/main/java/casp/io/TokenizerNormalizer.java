package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * The "normalizer" section of tokenizer.json: a string-to-string step run on each piece of text
 * between added tokens. Supported: Sequence, Prepend, Replace (String or Regex pattern), NFC, NFD,
 * NFKC, NFKD, Lowercase, Strip.
 */
final class TokenizerNormalizer {
    private TokenizerNormalizer() {
    }

    /** Null when the section is absent or null (no normalization). */
    static UnaryOperator<String> parse(JsonNode node, String file) {
        if (node == null || node.isNull()) return null;
        String type = TokenizerJson.type(node, "normalizer", file);
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                for (JsonNode child : TokenizerJson.array(node, "normalizers", "normalizer", file)) {
                    UnaryOperator<String> step = parse(child, file);
                    if (step != null) steps.add(step);
                }
                return s -> {
                    for (UnaryOperator<String> step : steps) s = step.apply(s);
                    return s;
                };
            }
            case "Prepend": {
                String prefix = TokenizerJson.text(node, "prepend", "normalizer", file);
                // Hugging Face prepends only to non-empty text.
                return s -> s.isEmpty() ? s : prefix + s;
            }
            case "Replace": {
                TokenizerJson.Replacer r = TokenizerJson.replacer(node, "normalizer", file);
                return r::apply;
            }
            case "NFC":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD":
                return s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase":
                return s -> s.toLowerCase(Locale.ROOT);
            case "Strip": {
                boolean left = node.path("strip_left").asBoolean(true);
                boolean right = node.path("strip_right").asBoolean(true);
                return s -> TokenizerJson.stripWhitespace(s, left, right);
            }
            default:
                throw new BadInputException("unsupported normalizer type " + type + " in " + file);
        }
    }
}
