package casp.synth;

import casp.io.ChatTemplate;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A Llama-2-style tokenizer for a shape twin (tokenizer.json and tokenizer_config.json): BPE with
 * byte fallback and the metaspace normalizer, ids 0-2 = unk, bos, eos, 3-258 the byte tokens, then
 * single characters and their merges until the vocabulary reaches the config's size (or the first
 * added token). A LLaVA config's image / video / pad ids become added special tokens. The merges
 * are synthetic: texts encode and decode exactly, with realistic token counts per word, but the
 * split is not the real model's.
 */
public final class TwinTokenizer {
    private TwinTokenizer() {}

    private static final ObjectMapper JSON = new ObjectMapper();
    /** The characters that start the merge table: word boundary, letters, digits, punctuation. */
    private static final String ALPHABET;

    static {
        StringBuilder s = new StringBuilder("\u2581");
        for (char c = 'a'; c <= 'z'; c++) s.append(c);
        for (char c = 'A'; c <= 'Z'; c++) s.append(c);
        for (char c = '0'; c <= '9'; c++) s.append(c);
        for (char c = 33; c < 127; c++) if (!Character.isLetterOrDigit(c)) s.append(c);
        ALPHABET = s.toString();
    }

    /** Special tokens beyond unk / bos / eos: id -> text, from the config's image, video and pad ids. */
    static Map<Integer, String> addedTokens(JsonNode root) {
        Map<Integer, String> added = new TreeMap<>();
        put(added, root.path("video_token_index"), "<video>");
        put(added, root.path("image_token_index"), "<image>");
        put(added, root.path("pad_token_id"), "<pad>");
        return added;
    }

    private static void put(Map<Integer, String> added, JsonNode id, String text) {
        if (id.canConvertToInt() && id.asInt() > 2) added.put(id.asInt(), text);
    }

    /** tokenizer.json for a vocabulary of vocabSize ids (added tokens included). */
    public static ObjectNode tokenizerJson(int vocabSize, Map<Integer, String> added) {
        int bpeSize = vocabSize;
        for (int id : added.keySet()) bpeSize = Math.min(bpeSize, id);
        if (bpeSize < 3 + 256) throw new IllegalArgumentException("vocabulary of " + bpeSize + " ids cannot hold the 259 base tokens");
        Set<String> vocab = new LinkedHashSet<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) vocab.add(String.format("<0x%02X>", b));
        List<String> merges = new ArrayList<>();
        List<String> previous = new ArrayList<>();
        for (int i = 0; i < ALPHABET.length() && vocab.size() < bpeSize; i++) {
            String c = ALPHABET.substring(i, i + 1);
            vocab.add(c);
            previous.add(c);
        }
        // Level by level: every token of the previous level followed by every character.
        while (vocab.size() < bpeSize) {
            List<String> next = new ArrayList<>();
            for (String left : previous) {
                for (int i = 0; i < ALPHABET.length() && vocab.size() < bpeSize; i++) {
                    String right = ALPHABET.substring(i, i + 1);
                    if (right.equals("\u2581")) continue; // the word boundary only starts a token
                    String merged = left + right;
                    if (vocab.add(merged)) {
                        merges.add(left + " " + right);
                        next.add(merged);
                    }
                }
                if (vocab.size() >= bpeSize) break;
            }
            previous = next;
        }

        ObjectNode t = JSON.createObjectNode();
        t.put("version", "1.0");
        t.putNull("truncation");
        t.putNull("padding");
        ArrayNode addedNode = t.putArray("added_tokens");
        addedToken(addedNode, 0, "<unk>");
        addedToken(addedNode, 1, "<s>");
        addedToken(addedNode, 2, "</s>");
        added.forEach((id, text) -> addedToken(addedNode, id, text));
        ObjectNode norm = t.putObject("normalizer");
        norm.put("type", "Sequence");
        ArrayNode ns = norm.putArray("normalizers");
        ns.addObject().put("type", "Prepend").put("prepend", "\u2581");
        ObjectNode replace = ns.addObject().put("type", "Replace");
        replace.putObject("pattern").put("String", " ");
        replace.put("content", "\u2581");
        t.putNull("pre_tokenizer");
        ObjectNode post = t.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ArrayNode pair = post.putArray("pair");
        pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        pair.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 1);
        pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode bos = post.putObject("special_tokens").putObject("<s>");
        bos.put("id", "<s>");
        bos.putArray("ids").add(1);
        bos.putArray("tokens").add("<s>");
        ObjectNode dec = t.putObject("decoder");
        dec.put("type", "Sequence");
        ArrayNode ds = dec.putArray("decoders");
        ObjectNode toSpace = ds.addObject().put("type", "Replace");
        toSpace.putObject("pattern").put("String", "\u2581");
        toSpace.put("content", " ");
        ds.addObject().put("type", "ByteFallback");
        ds.addObject().put("type", "Fuse");
        ds.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        ObjectNode model = t.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", "<unk>");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        ObjectNode v = model.putObject("vocab");
        int id = 0;
        for (String s : vocab) v.put(s, id++);
        ArrayNode m = model.putArray("merges");
        merges.forEach(m::add);
        return t;
    }

    private static void addedToken(ArrayNode list, int id, String text) {
        list.addObject().put("id", id).put("content", text).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
    }

    /**
     * tokenizer_config.json: special tokens, and for a LLaVA model LLaVA-1.5's chat template.
     */
    public static ObjectNode tokenizerConfig(Map<Integer, String> added, boolean llava, int maxLength) {
        ObjectNode c = JSON.createObjectNode();
        c.put("add_bos_token", true);
        c.put("add_eos_token", false);
        ObjectNode dec = c.putObject("added_tokens_decoder");
        Map<Integer, String> all = new TreeMap<>(added);
        all.put(0, "<unk>");
        all.put(1, "<s>");
        all.put(2, "</s>");
        all.forEach((id, text) -> dec.putObject(Integer.toString(id)).put("content", text).put("lstrip", false)
                .put("normalized", false).put("rstrip", false).put("single_word", false).put("special", true));
        c.put("bos_token", "<s>");
        c.put("eos_token", "</s>");
        c.put("unk_token", "<unk>");
        if (added.containsValue("<pad>")) c.put("pad_token", "<pad>");
        if (added.containsValue("<image>")) c.put("image_token", "<image>");
        if (added.containsValue("<video>")) c.put("video_token", "<video>");
        c.put("clean_up_tokenization_spaces", false);
        c.put("legacy", false);
        c.put("model_max_length", maxLength);
        c.put("padding_side", "left");
        c.put("tokenizer_class", "LlamaTokenizerFast");
        if (llava) c.put("chat_template", ChatTemplate.LLAVA_15_TEMPLATE);
        return c;
    }
}
