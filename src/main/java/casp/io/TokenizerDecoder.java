package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The "decoder" section of tokenizer.json. As in Hugging Face tokenizers each step maps the list
 * of token strings to a new list (so Strip after Fuse strips the whole text, before Fuse each
 * token); the text is the concatenation of the final list. Supported: Sequence, Replace,
 * ByteFallback, Fuse, Strip, ByteLevel, Metaspace, BPEDecoder.
 */
final class TokenizerDecoder {
    private TokenizerDecoder() {
    }

    /** Null when the section is absent or null. */
    static UnaryOperator<List<String>> parse(JsonNode node, String file) {
        if (node == null || node.isNull()) return null;
        String type = TokenizerJson.type(node, "decoder", file);
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<List<String>>> steps = new ArrayList<>();
                for (JsonNode child : TokenizerJson.array(node, "decoders", "decoder", file)) {
                    UnaryOperator<List<String>> step = parse(child, file);
                    if (step != null) steps.add(step);
                }
                return tokens -> {
                    for (UnaryOperator<List<String>> step : steps) tokens = step.apply(tokens);
                    return tokens;
                };
            }
            case "Replace": {
                TokenizerJson.Replacer r = TokenizerJson.replacer(node, "decoder", file);
                return tokens -> map(tokens, r::apply);
            }
            case "ByteFallback":
                return TokenizerDecoder::byteFallback;
            case "Fuse":
                return tokens -> List.of(String.join("", tokens));
            case "Strip": {
                String content = TokenizerJson.text(node, "content", "decoder", file);
                if (content.length() != 1) {
                    throw new BadInputException("malformed tokenizer file " + file + ": Strip content must be one character");
                }
                char c = content.charAt(0);
                int start = node.path("start").asInt(0);
                int stop = node.path("stop").asInt(0);
                return tokens -> map(tokens, t -> strip(t, c, start, stop));
            }
            case "ByteLevel":
                return TokenizerDecoder::byteLevel;
            case "Metaspace": {
                String replacement = node.path("replacement").asText("\u2581");
                boolean stripFirst;
                if (node.hasNonNull("prepend_scheme")) stripFirst = !node.get("prepend_scheme").asText().equals("never");
                else stripFirst = node.path("add_prefix_space").asBoolean(true);
                return tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        String t = tokens.get(i).replace(replacement, " ");
                        if (i == 0 && stripFirst && t.startsWith(" ")) t = t.substring(1);
                        out.add(t);
                    }
                    return out;
                };
            }
            case "BPEDecoder": {
                String suffix = node.path("suffix").asText("</w>");
                return tokens -> {
                    List<String> out = new ArrayList<>(tokens.size());
                    for (int i = 0; i < tokens.size(); i++) {
                        out.add(tokens.get(i).replace(suffix, i == tokens.size() - 1 ? "" : " "));
                    }
                    return out;
                };
            }
            default:
                throw new BadInputException("unsupported decoder type " + type + " in " + file);
        }
    }

    private static List<String> map(List<String> tokens, UnaryOperator<String> f) {
        List<String> out = new ArrayList<>(tokens.size());
        for (String t : tokens) out.add(f.apply(t));
        return out;
    }

    /** Removes up to start leading and up to stop trailing copies of c from one token. */
    static String strip(String t, char c, int start, int stop) {
        int from = 0;
        while (from < start && from < t.length() && t.charAt(from) == c) from++;
        int to = t.length();
        for (int i = 0; i < stop && to > from && t.charAt(to - 1) == c; i++) to--;
        return t.substring(from, to);
    }

    /** The byte value of a {@code <0xNN>} token, or -1. */
    static int byteToken(String t) {
        if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') return -1;
        int hi = Character.digit(t.charAt(3), 16);
        int lo = Character.digit(t.charAt(4), 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    /**
     * Runs of {@code <0xNN>} tokens become the text their bytes spell; a run that is not valid UTF-8
     * becomes one U+FFFD per byte (Hugging Face's rule; the stream decoder relies on the trailing
     * U+FFFD to hold back an incomplete character).
     */
    static List<String> byteFallback(List<String> tokens) {
        List<String> out = new ArrayList<>(tokens.size());
        ByteArrayOutputStream run = new ByteArrayOutputStream();
        for (String t : tokens) {
            int b = byteToken(t);
            if (b >= 0) {
                run.write(b);
                continue;
            }
            flushRun(run, out);
            out.add(t);
        }
        flushRun(run, out);
        return out;
    }

    private static void flushRun(ByteArrayOutputStream run, List<String> out) {
        if (run.size() == 0) return;
        byte[] bytes = run.toByteArray();
        run.reset();
        String s = Utf8.decodeStrict(bytes);
        if (s != null) {
            out.add(s);
        } else {
            for (int i = 0; i < bytes.length; i++) out.add("\uFFFD");
        }
    }

    /** All tokens' alphabet characters back to bytes, decoded as UTF-8 (invalid bytes -> U+FFFD). */
    static List<String> byteLevel(List<String> tokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (String t : tokens) ByteLevel.appendBytes(t, bytes);
        return List.of(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
    }

    /** Strict UTF-8 decoding. */
    static final class Utf8 {
        private Utf8() {
        }

        /** The text, or null if the bytes are not valid UTF-8. */
        static String decodeStrict(byte[] bytes) {
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
            } catch (java.nio.charset.CharacterCodingException e) {
                return null;
            }
        }
    }
}
