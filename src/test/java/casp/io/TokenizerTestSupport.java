package casp.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Builds small tokenizer.json files for tests and random text. */
final class TokenizerTestSupport {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Llama 3's Split regex (as in its tokenizer.json). */
    static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Qwen2's: the same but one digit per piece. */
    static final String QWEN2_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private TokenizerTestSupport() {
    }

    /** Text in the GPT-2 byte alphabet ("Ġworld" for " world"). */
    static String bl(String s) {
        return ByteLevel.encode(s);
    }

    /**
     * A byte-level BPE tokenizer.json in the Llama 3 / Qwen2 layout: ids 0..255 are the byte
     * symbols in byte order, then one id per merge result in merge order, then the special tokens
     * &lt;|begin_of_text|&gt;, &lt;|end_of_text|&gt;, &lt;|eot_id|&gt;. Pre-tokenizer Sequence[Split(pattern,
     * Isolated), ByteLevel(use_regex=false)], decoder ByteLevel.
     *
     * @param merges     pairs of plain-text strings ({" ", "t"} means "Ġ t")
     * @param bos        TemplateProcessing that prepends &lt;|begin_of_text|&gt; (Llama 3) or not (Qwen2)
     * @param nfc        an NFC normalizer (Qwen2)
     * @param mergePairs merges written as [a, b] arrays instead of "a b" strings
     */
    static String byteLevelJson(String pattern, String[][] merges, boolean bos, boolean nfc, boolean ignoreMerges,
                                boolean mergePairs) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode vocab = JSON.createObjectNode();
        for (int b = 0; b < 256; b++) vocab.put(String.valueOf(ByteLevel.charOf(b)), b);
        ArrayNode mergeList = JSON.createArrayNode();
        for (String[] m : merges) {
            String a = bl(m[0]);
            String b = bl(m[1]);
            if (mergePairs) mergeList.add(JSON.createArrayNode().add(a).add(b));
            else mergeList.add(a + " " + b);
            if (!vocab.has(a + b)) vocab.put(a + b, vocab.size());
        }
        int n = vocab.size();
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"};
        for (int i = 0; i < specials.length; i++) {
            added.addObject().put("id", n + i).put("content", specials[i]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        if (nfc) root.putObject("normalizer").put("type", "NFC");
        else root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer").put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        ObjectNode split = steps.addObject().put("type", "Split");
        split.putObject("pattern").put("Regex", pattern);
        split.put("behavior", "Isolated").put("invert", false);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true)
                .put("use_regex", false);
        ObjectNode post = root.putObject("post_processor");
        if (bos) {
            post.put("type", "Sequence");
            ArrayNode procs = post.putArray("processors");
            procs.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", false);
            ObjectNode tp = procs.addObject().put("type", "TemplateProcessing");
            tp.putArray("single").add(JSON.createObjectNode().set("SpecialToken",
                            JSON.createObjectNode().put("id", specials[0]).put("type_id", 0)))
                    .add(JSON.createObjectNode().set("Sequence", JSON.createObjectNode().put("id", "A").put("type_id", 0)));
            tp.putArray("pair");
            ObjectNode st = tp.putObject("special_tokens").putObject(specials[0]);
            st.put("id", specials[0]);
            st.putArray("ids").add(n);
            st.putArray("tokens").add(specials[0]);
        } else {
            post.put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", false);
        }
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("use_regex", true);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout").putNull("unk_token").putNull("continuing_subword_prefix")
                .putNull("end_of_word_suffix").put("fuse_unk", false).put("byte_fallback", false)
                .put("ignore_merges", ignoreMerges);
        model.set("vocab", vocab);
        model.set("merges", mergeList);
        return root.toString();
    }

    /** The merges used by the byte-level tests; their results get ids 256.. in this order. */
    static final String[][] MERGES = {
            {" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {" ", "w"}, {"o", "r"}, {" w", "or"},
            {"l", "d"}, {" wor", "ld"}, {"1", "2"}, {"12", "3"}, {"'", "s"}, {"\n", "\n"}};

    static Tokenizer llama3Like() {
        return Tokenizer.fromJson(byteLevelJson(LLAMA3_PATTERN, MERGES, true, false, true, false), null, "llama3-test");
    }

    static Tokenizer qwen2Like() {
        return Tokenizer.fromJson(byteLevelJson(QWEN2_PATTERN, MERGES, false, true, false, true), null, "qwen2-test");
    }

    /** Token strings of ids. */
    static List<String> tokens(Tokenizer t, int[] ids) {
        List<String> out = new ArrayList<>();
        for (int id : ids) out.add(t.token(id));
        return out;
    }

    /**
     * Random text: ASCII words and punctuation, runs of spaces / newlines / tabs, control
     * characters, accents, CJK, emoji (with ZWJ and skin tones), and random code points from all
     * planes. Never contains U+FFFD, surrogates, or the strings in avoid.
     */
    static String randomText(Random rnd, int maxLen, String... avoid) {
        String[] atoms = {"a", "b", "the", "Once", " ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n", "'s", "'LL", ".", ",",
                "!", "?", "\"", "123", "9", "é", "ß", "Ω", "ж", "中文", "日本語", "한국어", "😀", "👍🏽", "🧑‍🚀", "\u00a0",
                "\u3000", "\u2028", "\u0085", "\u200b", "e\u0301", "\u0000", "\u0001", "\u007f", "€", "™", "“", "<", ">", "|"};
        StringBuilder sb = new StringBuilder();
        int n = rnd.nextInt(maxLen + 1);
        for (int i = 0; i < n; i++) {
            if (rnd.nextInt(6) == 0) {
                int cp;
                do {
                    int r = rnd.nextInt(4);
                    cp = r == 0 ? rnd.nextInt(0x80) : r == 1 ? 0x80 + rnd.nextInt(0x780)
                            : r == 2 ? 0x800 + rnd.nextInt(0xF800) : 0x10000 + rnd.nextInt(0x100000);
                } while ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFD);
                sb.appendCodePoint(cp);
            } else {
                sb.append(atoms[rnd.nextInt(atoms.length)]);
            }
        }
        String s = sb.toString();
        for (String a : avoid) s = s.replace(a, "x");
        return s;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
