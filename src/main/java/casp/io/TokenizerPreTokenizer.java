package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The "pre_tokenizer" section of tokenizer.json: cuts normalized text into the pieces that BPE
 * sees one at a time. Supported: Sequence, Split (String or Regex pattern; every split behaviour;
 * invert), ByteLevel (GPT-2 regex, add_prefix_space, byte-to-unicode mapping), Metaspace,
 * Digits, Whitespace, WhitespaceSplit.
 */
abstract class TokenizerPreTokenizer {

    /** The pattern GPT-2's ByteLevel pre-tokenizer splits on when use_regex is true. */
    static final String GPT2_PATTERN =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /**
     * Appends the pieces of one piece of text to out. atStart: the piece begins at the start of
     * the whole input text (Metaspace's prepend_scheme "first" needs it).
     */
    abstract void split(String piece, boolean atStart, List<String> out);

    /** Runs the pre-tokenizer on one text segment (no pre-tokenizer: the segment is one piece). */
    static List<String> run(TokenizerPreTokenizer pre, String segment, boolean atStart) {
        List<String> out = new ArrayList<>();
        if (pre == null) {
            if (!segment.isEmpty()) out.add(segment);
        } else {
            pre.split(segment, atStart, out);
        }
        return out;
    }

    static TokenizerPreTokenizer parse(JsonNode node, String file) {
        if (node == null || node.isNull()) return null;
        String type = TokenizerJson.type(node, "pre_tokenizer", file);
        switch (type) {
            case "Sequence": {
                List<TokenizerPreTokenizer> steps = new ArrayList<>();
                for (JsonNode child : TokenizerJson.array(node, "pretokenizers", "pre_tokenizer", file)) {
                    TokenizerPreTokenizer step = parse(child, file);
                    if (step != null) steps.add(step);
                }
                return new SequenceStep(steps);
            }
            case "Split": {
                Pattern p = TokenizerJson.pattern(node, "pre_tokenizer", file);
                String behavior = node.path("behavior").asText("Isolated");
                return new SplitStep(p, Behavior.parse(behavior, file), node.path("invert").asBoolean(false));
            }
            case "ByteLevel":
                return new ByteLevelStep(node.path("add_prefix_space").asBoolean(true), node.path("use_regex").asBoolean(true));
            case "Metaspace": {
                String replacement = node.path("replacement").asText("\u2581");
                if (replacement.codePointCount(0, replacement.length()) != 1) {
                    throw new BadInputException("malformed tokenizer file " + file + ": Metaspace replacement must be one character");
                }
                String scheme;
                if (node.hasNonNull("prepend_scheme")) {
                    scheme = node.get("prepend_scheme").asText();
                } else {
                    scheme = node.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                }
                if (!scheme.equals("always") && !scheme.equals("first") && !scheme.equals("never")) {
                    throw new BadInputException("unsupported Metaspace prepend_scheme " + scheme + " in " + file);
                }
                return new MetaspaceStep(replacement, scheme, node.path("split").asBoolean(true));
            }
            case "Digits":
                return node.path("individual_digits").asBoolean(false)
                        ? new SplitStep(Pattern.compile("\\p{N}"), Behavior.ISOLATED, false)
                        : new SplitStep(Pattern.compile("\\p{N}"), Behavior.CONTIGUOUS, false);
            case "Whitespace":
                // Keeps the matches of \w+|[^\w\s]+ (whitespace removed).
                return new SplitStep(TokenizerJson.regex("\\w+|[^\\w\\s]+", "pre_tokenizer", file), Behavior.REMOVED, true);
            case "WhitespaceSplit":
                return new SplitStep(TokenizerJson.regex("\\s+", "pre_tokenizer", file), Behavior.REMOVED, false);
            default:
                throw new BadInputException("unsupported pre_tokenizer type " + type + " in " + file);
        }
    }

    enum Behavior {
        REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

        static Behavior parse(String name, String file) {
            switch (name) {
                case "Removed": return REMOVED;
                case "Isolated": return ISOLATED;
                case "MergedWithPrevious": return MERGED_WITH_PREVIOUS;
                case "MergedWithNext": return MERGED_WITH_NEXT;
                case "Contiguous": return CONTIGUOUS;
                default: throw new BadInputException("unsupported Split behavior " + name + " in " + file);
            }
        }
    }

    static final class SequenceStep extends TokenizerPreTokenizer {
        private final List<TokenizerPreTokenizer> steps;

        SequenceStep(List<TokenizerPreTokenizer> steps) {
            this.steps = steps;
        }

        @Override
        void split(String piece, boolean atStart, List<String> out) {
            List<String> pieces = List.of(piece);
            for (TokenizerPreTokenizer step : steps) {
                List<String> next = new ArrayList<>();
                for (int i = 0; i < pieces.size(); i++) step.split(pieces.get(i), atStart && i == 0, next);
                pieces = next;
            }
            out.addAll(pieces);
        }
    }

    /** Hugging Face's Split: regex matches and the gaps between them, combined by the behaviour. */
    static final class SplitStep extends TokenizerPreTokenizer {
        private final Pattern pattern;
        private final Behavior behavior;
        private final boolean invert;

        SplitStep(Pattern pattern, Behavior behavior, boolean invert) {
            this.pattern = pattern;
            this.behavior = behavior;
            this.invert = invert;
        }

        @Override
        void split(String s, boolean atStart, List<String> out) {
            if (s.isEmpty()) return;
            // Spans covering s: (start, end, isMatch); empty matches are dropped.
            List<int[]> spans = new ArrayList<>();
            Matcher m = pattern.matcher(s);
            int prev = 0;
            while (m.find()) {
                if (m.start() == m.end()) continue;
                if (m.start() > prev) spans.add(new int[]{prev, m.start(), invert ? 1 : 0});
                spans.add(new int[]{m.start(), m.end(), invert ? 0 : 1});
                prev = m.end();
            }
            if (prev < s.length()) spans.add(new int[]{prev, s.length(), invert ? 1 : 0});

            List<int[]> pieces = new ArrayList<>();
            switch (behavior) {
                case REMOVED:
                    for (int[] sp : spans) if (sp[2] == 0) pieces.add(sp);
                    break;
                case ISOLATED:
                    pieces.addAll(spans);
                    break;
                case MERGED_WITH_PREVIOUS: {
                    boolean prevMatch = false;
                    for (int[] sp : spans) {
                        if (sp[2] == 1 && !prevMatch && !pieces.isEmpty()) pieces.get(pieces.size() - 1)[1] = sp[1];
                        else pieces.add(sp.clone());
                        prevMatch = sp[2] == 1;
                    }
                    break;
                }
                case MERGED_WITH_NEXT: {
                    boolean nextMatch = false;
                    List<int[]> rev = new ArrayList<>();
                    for (int i = spans.size() - 1; i >= 0; i--) {
                        int[] sp = spans.get(i);
                        if (sp[2] == 1 && !nextMatch && !rev.isEmpty()) rev.get(rev.size() - 1)[0] = sp[0];
                        else rev.add(sp.clone());
                        nextMatch = sp[2] == 1;
                    }
                    for (int i = rev.size() - 1; i >= 0; i--) pieces.add(rev.get(i));
                    break;
                }
                case CONTIGUOUS: {
                    boolean prevMatch = false;
                    for (int[] sp : spans) {
                        if (sp[2] == 1 && prevMatch) pieces.get(pieces.size() - 1)[1] = sp[1];
                        else pieces.add(sp.clone());
                        prevMatch = sp[2] == 1;
                    }
                    break;
                }
            }
            for (int[] p : pieces) if (p[1] > p[0]) out.add(s.substring(p[0], p[1]));
        }
    }

    /** GPT-2 byte-level: optional prefix space, optional GPT-2 regex split, then bytes to alphabet. */
    static final class ByteLevelStep extends TokenizerPreTokenizer {
        private static final SplitStep GPT2 = new SplitStep(
                Pattern.compile(GPT2_PATTERN, Pattern.UNICODE_CHARACTER_CLASS), Behavior.ISOLATED, false);
        private final boolean addPrefixSpace;
        private final boolean useRegex;

        ByteLevelStep(boolean addPrefixSpace, boolean useRegex) {
            this.addPrefixSpace = addPrefixSpace;
            this.useRegex = useRegex;
        }

        @Override
        void split(String piece, boolean atStart, List<String> out) {
            if (piece.isEmpty()) return;
            if (addPrefixSpace && !piece.startsWith(" ")) piece = " " + piece;
            List<String> parts = new ArrayList<>();
            if (useRegex) GPT2.split(piece, atStart, parts);
            else parts.add(piece);
            for (String p : parts) out.add(ByteLevel.encode(p));
        }
    }

    /** SentencePiece-style: spaces become the replacement character (▁), optionally prepended. */
    static final class MetaspaceStep extends TokenizerPreTokenizer {
        private final String replacement;
        private final String scheme;
        private final boolean splitWords;

        MetaspaceStep(String replacement, String scheme, boolean splitWords) {
            this.replacement = replacement;
            this.scheme = scheme;
            this.splitWords = splitWords;
        }

        @Override
        void split(String piece, boolean atStart, List<String> out) {
            if (piece.isEmpty()) return;
            String s = piece.replace(" ", replacement);
            boolean prepend = scheme.equals("always") || (scheme.equals("first") && atStart);
            if (prepend && !s.startsWith(replacement)) s = replacement + s;
            if (!splitWords) {
                out.add(s);
                return;
            }
            // Each replacement character starts a new piece (MergedWithNext).
            int start = 0;
            for (int i = s.indexOf(replacement, 1); i >= 0; i = s.indexOf(replacement, i + replacement.length())) {
                if (i > start) out.add(s.substring(start, i));
                start = i;
            }
            if (start < s.length()) out.add(s.substring(start));
        }
    }
}
