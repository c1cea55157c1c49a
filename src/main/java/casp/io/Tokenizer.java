package casp.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import it.unimi.dsi.fastutil.ints.IntArrayList;
import it.unimi.dsi.fastutil.longs.Long2LongOpenHashMap;
import it.unimi.dsi.fastutil.objects.Object2IntOpenHashMap;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.function.UnaryOperator;

/**
 * A Hugging Face tokenizer.json tokenizer with a BPE model: SentencePiece-style BPE with byte
 * fallback and the "▁" metaspace convention (Llama 2), and byte-level BPE with a regex
 * pre-tokenizer (GPT-2, Llama 3, Qwen2). Encoding follows Hugging Face tokenizers: added tokens
 * are cut out of the raw text first; each remaining segment is normalized, pre-tokenized and run
 * through BPE; the post-processor then adds BOS/EOS. Immutable and thread-safe.
 *
 * <p>Checked against Hugging Face tokenizers 0.23 on the three shared models and on Llama 3 /
 * Qwen2 / Metaspace / added-token variants (tens of thousands of random strings: identical ids and
 * decodes). Known difference: the regex classes (\p{L}, \s, ...) use the JDK's Unicode tables
 * (Unicode 13 on Java 17), so a code point assigned only in a later Unicode version (e.g. new
 * Egyptian hieroglyphs) may be split differently than by the Rust library.
 *
 * <p>Not supported (rejected with {@link BadInputException}): WordPiece / Unigram / WordLevel
 * models, Bert-style normalizers, pair templates. BPE dropout is ignored (inference wants
 * deterministic ids). The chat template is exposed as text, not interpreted.
 */
public final class Tokenizer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final UnaryOperator<String> normalizer;
    private final TokenizerPreTokenizer preTokenizer;
    private final BpeModel model;
    private final UnaryOperator<List<String>> decoder;
    private final String[] idToToken;
    private final Object2IntOpenHashMap<String> tokenToId;
    private final BitSet special;
    /** Added tokens matched on the raw text (normalized=false) and on normalized text. */
    private final AddedTokenMatcher rawAdded;
    private final AddedTokenMatcher normalizedAdded;
    /** The single-sequence template: ids before and after the text's ids. */
    private final int[] templateBefore;
    private final int[] templateAfter;
    private final int bosId;
    private final int eosId;
    private final int[] eosIds;
    private final String chatTemplate;

    /**
     * Loads a tokenizer from a model folder (its tokenizer.json, plus tokenizer_config.json,
     * special_tokens_map.json and generation_config.json when present) or from a tokenizer.json
     * path (the same companion files are looked for next to it).
     *
     * @throws BadInputException if the file is missing, malformed or uses an unsupported model type
     */
    public static Tokenizer load(Path modelDirOrFile) {
        Path file = Files.isDirectory(modelDirOrFile) ? modelDirOrFile.resolve("tokenizer.json") : modelDirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new BadInputException(Files.isDirectory(modelDirOrFile)
                    ? "no tokenizer.json in " + modelDirOrFile
                    : "tokenizer file " + modelDirOrFile + " does not exist");
        }
        Path dir = file.toAbsolutePath().getParent();
        return new Tokenizer(readJson(file), optionalJson(dir.resolve("tokenizer_config.json")),
                optionalJson(dir.resolve("special_tokens_map.json")),
                optionalJson(dir.resolve("generation_config.json")), file.toString());
    }

    /**
     * Builds a tokenizer from the text of a tokenizer.json and, optionally (null), of a
     * tokenizer_config.json. sourceName names the tokenizer in error messages.
     */
    public static Tokenizer fromJson(String tokenizerJson, String tokenizerConfigJson, String sourceName) {
        return new Tokenizer(parseJson(tokenizerJson, sourceName),
                tokenizerConfigJson == null ? null : parseJson(tokenizerConfigJson, sourceName + " (tokenizer_config)"),
                null, null, sourceName);
    }

    private static JsonNode readJson(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new BadInputException(file + ": not UTF-8 text (a binary file?)", e);
        } catch (IOException e) {
            throw new BadInputException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return parseJson(text, file.toString());
    }

    private static JsonNode optionalJson(Path file) {
        return Files.isRegularFile(file) ? readJson(file) : null;
    }

    private static JsonNode parseJson(String text, String name) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null || !node.isObject()) {
                throw new BadInputException("malformed JSON in " + name + ": expected an object");
            }
            return node;
        } catch (JsonProcessingException e) {
            throw new BadInputException("malformed JSON in " + name + ": " + e.getOriginalMessage(), e);
        }
    }

    private Tokenizer(JsonNode root, JsonNode config, JsonNode specialMap, JsonNode generation, String source) {
        this.source = source;
        JsonNode modelNode = root.get("model");
        if (modelNode == null || !modelNode.isObject()) {
            throw new BadInputException("malformed tokenizer file " + source + ": no \"model\" object");
        }
        String type = modelNode.hasNonNull("type") ? modelNode.get("type").asText()
                : (modelNode.has("merges") ? "BPE" : "(none)");
        if (!type.equals("BPE")) {
            throw new BadInputException("unsupported tokenizer model type " + type + " in " + source
                    + " (only BPE is supported)");
        }

        // Vocabulary: model vocab, then added tokens (which may add ids or repeat model ones).
        JsonNode vocabNode = modelNode.get("vocab");
        if (vocabNode == null || !vocabNode.isObject()) {
            throw new BadInputException("malformed tokenizer file " + source + ": model.vocab must be an object");
        }
        tokenToId = new Object2IntOpenHashMap<>(vocabNode.size() * 2);
        tokenToId.defaultReturnValue(-1);
        Object2IntOpenHashMap<String> modelVocab = new Object2IntOpenHashMap<>(vocabNode.size() * 2);
        modelVocab.defaultReturnValue(-1);
        int maxId = -1;
        for (Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0) {
                throw new BadInputException("malformed tokenizer file " + source + ": vocab entry \"" + e.getKey()
                        + "\" has no valid id");
            }
            int id = e.getValue().asInt();
            modelVocab.put(e.getKey(), id);
            maxId = Math.max(maxId, id);
        }
        List<AddedToken> added = new ArrayList<>();
        JsonNode addedNode = root.get("added_tokens");
        if (addedNode != null && addedNode.isArray()) {
            for (JsonNode a : addedNode) {
                if (!a.hasNonNull("content") || !a.path("id").canConvertToInt()) {
                    throw new BadInputException("malformed tokenizer file " + source + ": an added token lacks id or content");
                }
                AddedToken t = new AddedToken(a.get("id").asInt(), a.get("content").asText(),
                        a.path("special").asBoolean(false), a.path("lstrip").asBoolean(false),
                        a.path("rstrip").asBoolean(false), a.path("single_word").asBoolean(false),
                        a.path("normalized").asBoolean(!a.path("special").asBoolean(false)));
                if (t.content.isEmpty()) continue;
                added.add(t);
                maxId = Math.max(maxId, t.id);
            }
        }
        // Ids index arrays: a vocabulary is dense, so an id far beyond the tokens the file defines is damage, not a gap.
        long idLimit = 2L * (modelVocab.size() + added.size()) + 256;
        for (AddedToken t : added) {
            if (t.id < 0) throw new BadInputException("malformed tokenizer file " + source + ": added token \"" + t.content + "\" has id " + t.id);
        }
        if (maxId >= idLimit)
            throw new BadInputException("malformed tokenizer file " + source + ": token id " + maxId + " is far beyond the "
                    + (modelVocab.size() + added.size()) + " tokens the file defines");
        idToToken = new String[maxId + 1];
        for (Object2IntOpenHashMap.Entry<String> e : modelVocab.object2IntEntrySet()) {
            idToToken[e.getIntValue()] = e.getKey();
            tokenToId.put(e.getKey(), e.getIntValue());
        }
        normalizer = TokenizerNormalizer.parse(root.get("normalizer"), source);
        special = new BitSet(maxId + 1);
        List<AddedToken> raw = new ArrayList<>();
        List<AddedToken> norm = new ArrayList<>();
        for (AddedToken t : added) {
            tokenToId.put(t.content, t.id);
            if (t.special) special.set(t.id);
            if (t.normalized && normalizer != null) {
                // Hugging Face matches a normalized added token by its normalized content (with the
                // Llama normalizer "magic" becomes "▁magic") and decodes it as that string too.
                t = t.withContent(normalizer.apply(t.content));
                if (t.content.isEmpty()) continue;
                tokenToId.putIfAbsent(t.content, t.id);
            }
            idToToken[t.id] = t.content;
            (t.normalized ? norm : raw).add(t);
        }
        rawAdded = new AddedTokenMatcher(raw);
        normalizedAdded = new AddedTokenMatcher(norm);

        model = parseBpe(modelNode, modelVocab);
        preTokenizer = TokenizerPreTokenizer.parse(root.get("pre_tokenizer"), source);
        decoder = TokenizerDecoder.parse(root.get("decoder"), source);

        // Post-processor, then the tokenizer_config overrides that transformers applies.
        IntArrayList before = new IntArrayList();
        IntArrayList after = new IntArrayList();
        JsonNode post = root.get("post_processor");
        boolean hasPost = post != null && !post.isNull();
        if (hasPost) parsePostProcessor(post, before, after);
        bosId = specialId(config, specialMap, generation, "bos_token", "bos_token_id");
        eosId = specialId(config, specialMap, generation, "eos_token", "eos_token_id");
        String tokenizerClass = config == null ? "" : config.path("tokenizer_class").asText("");
        boolean llamaLike = tokenizerClass.matches("(Code)?Llama(Tokenizer|TokenizerFast)|Gemma(Tokenizer|TokenizerFast)");
        // transformers' LlamaTokenizer(Fast) rebuilds the template from add_bos_token/add_eos_token;
        // with no post-processor at all those flags are the only source of BOS/EOS.
        if (config != null && (llamaLike || !hasPost)
                && (config.has("add_bos_token") || config.has("add_eos_token"))) {
            before.clear();
            after.clear();
            if (config.path("add_bos_token").asBoolean(false)) {
                if (bosId < 0) throw new BadInputException("add_bos_token is set but no bos_token is defined for " + source);
                before.add(bosId);
            }
            if (config.path("add_eos_token").asBoolean(false)) {
                if (eosId < 0) throw new BadInputException("add_eos_token is set but no eos_token is defined for " + source);
                after.add(eosId);
            }
        }
        templateBefore = before.toIntArray();
        templateAfter = after.toIntArray();

        IntArrayList eos = new IntArrayList();
        if (eosId >= 0) eos.add(eosId);
        if (generation != null) {
            JsonNode g = generation.get("eos_token_id");
            if (g != null && g.isArray()) {
                for (JsonNode x : g) if (x.canConvertToInt() && !eos.contains(x.asInt())) eos.add(x.asInt());
            } else if (g != null && g.canConvertToInt() && !eos.contains(g.asInt())) {
                eos.add(g.asInt());
            }
        }
        eosIds = eos.toIntArray();
        chatTemplate = config != null && config.get("chat_template") != null && config.get("chat_template").isTextual()
                ? config.get("chat_template").asText() : null;
    }

    private BpeModel parseBpe(JsonNode m, Object2IntOpenHashMap<String> vocab) {
        // "dropout" is ignored: it only matters for training, inference uses the plain merges.
        int unkId = -1;
        if (m.hasNonNull("unk_token")) {
            String unk = m.get("unk_token").asText();
            unkId = vocab.getInt(unk);
            if (unkId < 0) throw new BadInputException("malformed tokenizer file " + source + ": unk_token " + unk + " is not in the vocabulary");
        }
        Long2LongOpenHashMap merges = new Long2LongOpenHashMap();
        merges.defaultReturnValue(-1);
        JsonNode list = m.get("merges");
        if (list != null && !list.isArray()) {
            throw new BadInputException("malformed tokenizer file " + source + ": model.merges must be an array");
        }
        String prefix = m.hasNonNull("continuing_subword_prefix") ? m.get("continuing_subword_prefix").asText() : "";
        int rank = 0;
        if (list != null) {
            for (JsonNode merge : list) {
                String left;
                String right;
                if (merge.isTextual()) {
                    String[] parts = merge.asText().split(" ", -1);
                    if (parts.length != 2) {
                        throw new BadInputException("malformed tokenizer file " + source + ": merge " + rank + " \""
                                + merge.asText() + "\" is not two tokens separated by one space");
                    }
                    left = parts[0];
                    right = parts[1];
                } else if (merge.isArray() && merge.size() == 2) {
                    left = merge.get(0).asText();
                    right = merge.get(1).asText();
                } else {
                    throw new BadInputException("malformed tokenizer file " + source + ": merge " + rank + " is neither \"a b\" nor [a, b]");
                }
                int a = vocab.getInt(left);
                int b = vocab.getInt(right);
                String mergedText = left + (right.startsWith(prefix) ? right.substring(prefix.length()) : right);
                int c = vocab.getInt(mergedText);
                if (a < 0 || b < 0 || c < 0) {
                    throw new BadInputException("malformed tokenizer file " + source + ": merge " + rank + " (" + left + " "
                            + right + ") uses a token that is not in the vocabulary");
                }
                long key = BpeModel.pairKey(a, b);
                // A repeated pair keeps its first (best) rank.
                if (!merges.containsKey(key)) merges.put(key, ((long) rank << 32) | c);
                rank++;
            }
        }
        return new BpeModel(vocab, merges, unkId, m.path("byte_fallback").asBoolean(false),
                m.path("fuse_unk").asBoolean(false), m.path("ignore_merges").asBoolean(false),
                prefix, m.hasNonNull("end_of_word_suffix") ? m.get("end_of_word_suffix").asText() : "");
    }

    private void parsePostProcessor(JsonNode post, IntArrayList before, IntArrayList after) {
        String type = TokenizerJson.type(post, "post_processor", source);
        switch (type) {
            case "Sequence":
                for (JsonNode p : TokenizerJson.array(post, "processors", "post_processor", source)) {
                    parsePostProcessor(p, before, after);
                }
                break;
            case "ByteLevel":
                break; // only adjusts offsets
            case "TemplateProcessing": {
                JsonNode specials = post.path("special_tokens");
                boolean seenA = false;
                for (JsonNode item : TokenizerJson.array(post, "single", "post_processor", source)) {
                    if (item.has("Sequence")) {
                        if (seenA) throw new BadInputException("unsupported TemplateProcessing in " + source + ": $A appears twice");
                        seenA = true;
                    } else if (item.has("SpecialToken")) {
                        String name = item.get("SpecialToken").path("id").asText();
                        JsonNode ids = specials.path(name).path("ids");
                        if (!ids.isArray()) {
                            throw new BadInputException("malformed tokenizer file " + source + ": template special token "
                                    + name + " is not in special_tokens");
                        }
                        for (JsonNode id : ids) (seenA ? after : before).add(id.asInt());
                    } else {
                        throw new BadInputException("malformed tokenizer file " + source + ": unknown TemplateProcessing item " + item);
                    }
                }
                break;
            }
            case "BertProcessing":
            case "RobertaProcessing":
                before.add(post.path("cls").path(1).asInt());
                after.add(post.path("sep").path(1).asInt());
                break;
            default:
                throw new BadInputException("unsupported post_processor type " + type + " in " + source);
        }
    }

    /** The id of a special token named in tokenizer_config / special_tokens_map, else generation_config's id. */
    private int specialId(JsonNode config, JsonNode specialMap, JsonNode generation, String key, String idKey) {
        for (JsonNode n : new JsonNode[]{config, specialMap}) {
            if (n == null) continue;
            JsonNode v = n.get(key);
            if (v == null || v.isNull()) continue;
            String content = v.isTextual() ? v.asText() : v.path("content").asText(null);
            if (content == null) continue;
            int id = tokenToId.getInt(content);
            if (id >= 0) return id;
        }
        if (generation != null && generation.path(idKey).canConvertToInt()) return generation.get(idKey).asInt();
        return -1;
    }

    // ------------------------------------------------------------------ encoding

    /** Encodes text with the special tokens of the post-processor (BOS for Llama). */
    public int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * Encodes text. Added tokens written in the text (such as "&lt;image&gt;" or "&lt;/s&gt;") become
     * their ids whatever addSpecial says; addSpecial adds the post-processor's tokens (BOS).
     */
    public int[] encode(String text, boolean addSpecial) {
        IntArrayList ids = new IntArrayList(text.length() / 3 + 4);
        if (addSpecial) ids.addElements(0, templateBefore);
        for (Segment seg : rawAdded.split(text)) {
            if (seg.tokenId >= 0) {
                ids.add(seg.tokenId);
                continue;
            }
            String normalized = normalizer == null ? seg.text : normalizer.apply(seg.text);
            boolean atStart = seg.start == 0;
            for (Segment sub : normalizedAdded.split(normalized)) {
                if (sub.tokenId >= 0) {
                    ids.add(sub.tokenId);
                    continue;
                }
                for (String piece : TokenizerPreTokenizer.run(preTokenizer, sub.text, atStart && sub.start == 0)) {
                    model.tokenize(piece, ids);
                }
            }
        }
        if (addSpecial) ids.addElements(ids.size(), templateAfter);
        return ids.toIntArray();
    }

    /** The pieces BPE sees for text (added tokens left out); for tests of the pre-tokenizer. */
    List<String> pieces(String text) {
        List<String> out = new ArrayList<>();
        for (Segment seg : rawAdded.split(text)) {
            if (seg.tokenId >= 0) continue;
            String normalized = normalizer == null ? seg.text : normalizer.apply(seg.text);
            for (Segment sub : normalizedAdded.split(normalized)) {
                if (sub.tokenId < 0) out.addAll(TokenizerPreTokenizer.run(preTokenizer, sub.text, seg.start == 0 && sub.start == 0));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ decoding

    /** Decodes ids to text, leaving out special tokens (BOS, EOS, &lt;image&gt;, ...). */
    public String decode(int[] ids) {
        return decode(ids, true);
    }

    /**
     * Decodes ids to text through the tokenizer.json decoder.
     *
     * @param skipSpecial leave out added tokens marked special
     * @throws BadInputException for an id that is not in the vocabulary
     */
    public String decode(int[] ids, boolean skipSpecial) {
        return decode(ids, 0, ids.length, skipSpecial);
    }

    String decode(int[] ids, int from, int to, boolean skipSpecial) {
        List<String> tokens = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            int id = ids[i];
            String t = token(id);
            if (skipSpecial && special.get(id)) continue;
            tokens.add(t);
        }
        if (decoder == null) return String.join(" ", tokens); // Hugging Face's default
        return String.join("", decoder.apply(tokens));
    }

    /**
     * A decoder for generated ids that returns text as it becomes complete (a character split
     * over several byte tokens is held back until its last byte arrives). contextIds (for
     * example the prompt) decide spacing but are not returned.
     */
    public TokenizerStream stream(int[] contextIds, boolean skipSpecial) {
        return new TokenizerStream(this, contextIds == null ? new int[0] : contextIds, skipSpecial);
    }

    /** {@link #stream(int[], boolean)} that skips special tokens. */
    public TokenizerStream stream(int[] contextIds) {
        return stream(contextIds, true);
    }

    // ------------------------------------------------------------------ vocabulary

    /** Highest id + 1 (the model's embedding may have more rows, as padding). */
    public int vocabSize() {
        return idToToken.length;
    }

    /** Whether id names a token of this tokenizer. */
    public boolean isKnownId(int id) {
        return id >= 0 && id < idToToken.length && idToToken[id] != null;
    }

    /**
     * The token string of an id as stored in tokenizer.json ("▁the", "Ġthe", "&lt;0x0A&gt;", "&lt;s&gt;").
     *
     * @throws BadInputException for an id that is not in the vocabulary
     */
    public String token(int id) {
        if (!isKnownId(id)) {
            throw new BadInputException("token id " + id + " is not in the vocabulary of " + source
                    + " (ids 0.." + (idToToken.length - 1) + ")");
        }
        return idToToken[id];
    }

    /** The id of a vocabulary or added token string, if any. */
    public OptionalInt tokenId(String token) {
        int id = tokenToId.getInt(token);
        return id < 0 ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** Whether id is an added token marked special. */
    public boolean isSpecial(int id) {
        return id >= 0 && special.get(id);
    }

    /** BOS id from tokenizer_config / special_tokens_map / generation_config, or -1. */
    public int bosId() {
        return bosId;
    }

    /** EOS id from tokenizer_config / special_tokens_map / generation_config, or -1. */
    public int eosId() {
        return eosId;
    }

    /** All ids that end generation: eos_token plus generation_config's eos_token_id (one or a list). */
    public int[] eosIds() {
        return eosIds.clone();
    }

    /** The ids encode(text, true) puts before the text's ids (e.g. [BOS]). */
    public int[] prefixIds() {
        return templateBefore.clone();
    }

    /** tokenizer_config.json's chat_template (Jinja source, not interpreted here), if any. */
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    /** The file this tokenizer was read from (for messages). */
    public String source() {
        return source;
    }

    /**
     * Replaces every occurrence of tokenId in ids with copies of it: how llava-hf processors
     * expand the single "&lt;image&gt;" placeholder to image_seq_length image positions.
     */
    public static int[] expandToken(int[] ids, int tokenId, int copies) {
        if (copies < 0) throw new IllegalArgumentException("copies < 0");
        IntArrayList out = new IntArrayList(ids.length + copies);
        for (int id : ids) {
            if (id == tokenId) for (int k = 0; k < copies; k++) out.add(tokenId);
            else out.add(id);
        }
        return out.toIntArray();
    }

    // ------------------------------------------------------------------ added tokens

    private static final class AddedToken {
        final int id;
        final String content;
        final boolean special;
        final boolean lstrip;
        final boolean rstrip;
        final boolean singleWord;
        final boolean normalized;

        AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip, boolean singleWord,
                   boolean normalized) {
            this.id = id;
            this.content = content;
            this.special = special;
            this.lstrip = lstrip;
            this.rstrip = rstrip;
            this.singleWord = singleWord;
            this.normalized = normalized;
        }

        AddedToken withContent(String c) {
            return new AddedToken(id, c, special, lstrip, rstrip, singleWord, normalized);
        }
    }

    /** A piece of text (tokenId = -1) or an added token, with its start in the split string. */
    private static final class Segment {
        final String text;
        final int tokenId;
        final int start;

        Segment(String text, int tokenId, int start) {
            this.text = text;
            this.tokenId = tokenId;
            this.start = start;
        }
    }

    /**
     * Finds added tokens in text, leftmost first and longest among those starting at the same
     * place (Hugging Face uses a leftmost-longest Aho-Corasick automaton). lstrip / rstrip make a
     * match swallow the whitespace before / after it; single_word matches only whole words.
     */
    private static final class AddedTokenMatcher {
        /** First char -> tokens starting with it, longest first. */
        private final Map<Character, List<AddedToken>> byFirst = new HashMap<>();

        AddedTokenMatcher(List<AddedToken> tokens) {
            for (AddedToken t : tokens) byFirst.computeIfAbsent(t.content.charAt(0), k -> new ArrayList<>()).add(t);
            for (List<AddedToken> l : byFirst.values()) l.sort(Comparator.comparingInt((AddedToken t) -> -t.content.length()));
        }

        List<Segment> split(String text) {
            List<Segment> out = new ArrayList<>();
            if (byFirst.isEmpty()) {
                if (!text.isEmpty()) out.add(new Segment(text, -1, 0));
                return out;
            }
            int textStart = 0; // start of the pending text segment
            int i = 0;
            while (i < text.length()) {
                List<AddedToken> candidates = byFirst.get(text.charAt(i));
                AddedToken hit = null;
                if (candidates != null) {
                    for (AddedToken t : candidates) {
                        if (text.startsWith(t.content, i)) {
                            hit = t;
                            break;
                        }
                    }
                }
                if (hit == null) {
                    i++;
                    continue;
                }
                if (hit.singleWord && !wholeWord(text, i, i + hit.content.length())) {
                    // As Hugging Face's automaton: the rejected match is passed over, not retried shorter.
                    i += hit.content.length();
                    continue;
                }
                int s = i;
                int e = i + hit.content.length();
                if (hit.lstrip) {
                    while (s > textStart && TokenizerJson.isWhiteSpace(text.codePointBefore(s))) s -= Character.charCount(text.codePointBefore(s));
                }
                if (hit.rstrip) {
                    while (e < text.length() && TokenizerJson.isWhiteSpace(text.codePointAt(e))) e += Character.charCount(text.codePointAt(e));
                }
                if (s > textStart) out.add(new Segment(text.substring(textStart, s), -1, textStart));
                out.add(new Segment(hit.content, hit.id, s));
                textStart = e;
                i = e;
            }
            if (textStart < text.length()) out.add(new Segment(text.substring(textStart), -1, textStart));
            return out;
        }

        private static boolean wholeWord(String text, int s, int e) {
            boolean before = s == 0 || !isWordChar(text.codePointBefore(s));
            boolean after = e == text.length() || !isWordChar(text.codePointAt(e));
            return before && after;
        }

        private static final java.util.regex.Pattern WORD_CHAR =
                java.util.regex.Pattern.compile("\\w", java.util.regex.Pattern.UNICODE_CHARACTER_CLASS);

        /** Unicode \w (letters, marks, digits, connector punctuation), as Rust's regex defines it. */
        private static boolean isWordChar(int cp) {
            return WORD_CHAR.matcher(new String(Character.toChars(cp))).matches();
        }
    }

    @Override
    public String toString() {
        return "Tokenizer[" + source + ", " + idToToken.length + " ids]";
    }
}
