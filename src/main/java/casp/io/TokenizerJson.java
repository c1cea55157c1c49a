package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** Small helpers shared by the tokenizer.json section parsers: field access with clear errors. */
final class TokenizerJson {
    private TokenizerJson() {
    }

    static String type(JsonNode node, String section, String file) {
        JsonNode t = node.get("type");
        if (t == null || !t.isTextual()) {
            throw new BadInputException("malformed tokenizer file " + file + ": a " + section + " has no \"type\"");
        }
        return t.asText();
    }

    static JsonNode array(JsonNode node, String field, String section, String file) {
        JsonNode a = node.get(field);
        if (a == null || !a.isArray()) {
            throw new BadInputException("malformed tokenizer file " + file + ": " + section + " "
                    + node.path("type").asText() + " needs an array \"" + field + "\"");
        }
        return a;
    }

    static String text(JsonNode node, String field, String section, String file) {
        JsonNode a = node.get(field);
        if (a == null || !a.isTextual()) {
            throw new BadInputException("malformed tokenizer file " + file + ": " + section + " "
                    + node.path("type").asText() + " needs a string \"" + field + "\"");
        }
        return a.asText();
    }

    /**
     * Compiles a pattern of tokenizer.json (written for Oniguruma). UNICODE_CHARACTER_CLASS makes
     * \s, \w and \d Unicode-aware as they are there; \p{L}, \p{N}, (?i:...) mean the same in Java.
     */
    static Pattern regex(String pattern, String section, String file) {
        try {
            return Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException e) {
            throw new BadInputException("unsupported regex in the " + section + " of " + file + ": " + e.getDescription()
                    + " in " + pattern);
        }
    }

    /** A pattern object {"String": s} or {"Regex": r}, as a Java pattern. */
    static Pattern pattern(JsonNode node, String section, String file) {
        JsonNode p = node.get("pattern");
        if (p != null && p.has("String")) return Pattern.compile(Pattern.quote(p.get("String").asText()));
        if (p != null && p.has("Regex")) return regex(p.get("Regex").asText(), section, file);
        throw new BadInputException("malformed tokenizer file " + file + ": " + section + " "
                + node.path("type").asText() + " needs a pattern {\"String\": ...} or {\"Regex\": ...}");
    }

    /** The Replace step (normalizer or decoder): every match of pattern becomes content. */
    static final class Replacer {
        private final Pattern pattern;
        private final String literal;
        private final String content;

        /** literal: the pattern was a plain string (String.replace is much cheaper than a regex). */
        Replacer(Pattern pattern, String literal, String content) {
            this.pattern = pattern;
            this.literal = literal;
            this.content = content;
        }

        String apply(String s) {
            if (literal != null) return s.replace(literal, content);
            return pattern.matcher(s).replaceAll(Matcher.quoteReplacement(content));
        }
    }

    static Replacer replacer(JsonNode node, String section, String file) {
        JsonNode p = node.get("pattern");
        String literal = p != null && p.has("String") ? p.get("String").asText() : null;
        return new Replacer(pattern(node, section, file), literal, text(node, "content", section, file));
    }

    /** Unicode White_Space, the set Rust's char::is_whitespace and Oniguruma's \s use. */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }

    static String stripWhitespace(String s, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        if (left) {
            while (start < end && isWhiteSpace(s.codePointAt(start))) start += Character.charCount(s.codePointAt(start));
        }
        if (right) {
            while (end > start && isWhiteSpace(s.codePointBefore(end))) end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(start, end);
    }
}
