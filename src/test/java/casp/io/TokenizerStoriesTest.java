package casp.io;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import it.unimi.dsi.fastutil.ints.IntArrayList;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The Llama-2-style tokenizer of the real stories260K model (SentencePiece BPE with byte fallback
 * and the "▁" normalizer) against the reference ids in ../shared/models/stories260K/reference.
 */
class TokenizerStoriesTest {
    private static Tokenizer cached;
    private Tokenizer tok;
    private Path ref;

    /** Per test (not @BeforeAll) so that missing assets show up as skipped tests. */
    @BeforeEach
    void load() {
        Path dir = TestData.modelDir("stories260K");
        if (cached == null) cached = Tokenizer.load(dir.resolve("model"));
        tok = cached;
        ref = dir.resolve("reference");
    }

    static JsonNode json(Path p) throws IOException {
        return TokenizerTestSupport.JSON.readTree(Files.readString(p, StandardCharsets.UTF_8));
    }

    static int[] ints(JsonNode arr) {
        int[] out = new int[arr.size()];
        for (int i = 0; i < out.length; i++) out[i] = arr.get(i).asInt();
        return out;
    }

    @Test
    void metadata() {
        assertEquals(512, tok.vocabSize());
        assertEquals(1, tok.bosId());
        assertEquals(2, tok.eosId());
        assertArrayEquals(new int[]{1}, tok.prefixIds());
        assertEquals("<0x0A>", tok.token(13));
        assertEquals("\u2581", tok.token(410));
    }

    @Test
    void promptsEncodeToReferenceIdsAndDecodeToReferenceText() throws IOException {
        for (String f : new String[]{"greedy_200.json", "greedy_200_prompt.json"}) {
            JsonNode r = json(ref.resolve(f));
            assertArrayEquals(ints(r.get("prompt_ids")), tok.encode(r.get("prompt").asText(), true), f);
            // text = tokenizer.json decode of all ids with special tokens skipped.
            assertEquals(r.get("text").asText(), tok.decode(ints(r.get("ids"))), f);
        }
        JsonNode logits = json(ref.resolve("logits_prompt.json"));
        assertArrayEquals(ints(logits.get("input_ids")), tok.encode(logits.get("prompt").asText(), true));
        assertArrayEquals(new int[]{1}, tok.encode("", true));
        assertArrayEquals(new int[0], tok.encode("", false));
    }

    @Test
    void everyEvalStoryEncodesExactly() throws IOException {
        JsonNode e = json(ref.resolve("eval_tokens.json"));
        IntArrayList stream = new IntArrayList();
        StringBuilder file = new StringBuilder();
        for (JsonNode story : e.get("stories")) {
            String text = story.get("text").asText();
            int[] ids = tok.encode(text, true);
            assertArrayEquals(ints(story.get("ids")), ids, "seed " + story.get("seed"));
            assertEquals(text, tok.decode(ids), "seed " + story.get("seed"));
            stream.addElements(stream.size(), ids);
            file.append(text).append('\n');
        }
        assertArrayEquals(ints(e.get("stream")), stream.toIntArray());
        assertEquals(e.get("n_tokens").asInt(), stream.size());
        // eval.txt is the stories joined with "\n" (checks that we read the file the same way).
        assertEquals(Files.readString(ref.resolve("eval.txt"), StandardCharsets.UTF_8), file.toString());
    }

    @Test
    void wholeEvalFileEncodesAsHuggingFaceDoes() throws IOException {
        // ppl.json "whole_file": eval.txt as one string, encoded once (one BOS) by HF tokenizers.
        JsonNode whole = json(ref.resolve("ppl.json")).get("whole_file");
        String text = Files.readString(ref.resolve("eval.txt"), StandardCharsets.UTF_8);
        int[] ids = tok.encode(text, true);
        assertEquals(whole.get("n_tokens").asInt(), ids.length);
        int[] first = ints(whole.get("first_ids"));
        assertArrayEquals(first, java.util.Arrays.copyOf(ids, first.length));
        assertEquals(text, tok.decode(ids));
    }

    @Test
    void streamingTheGreedyReferenceGivesItsText() throws IOException {
        JsonNode r = json(ref.resolve("greedy_200_prompt.json"));
        int[] prompt = ints(r.get("prompt_ids"));
        TokenizerStream s = tok.stream(prompt);
        StringBuilder out = new StringBuilder();
        for (JsonNode id : r.get("generated_ids")) out.append(s.push(id.asInt()));
        out.append(s.flush());
        assertEquals(r.get("text").asText(), r.get("prompt").asText() + out);
    }

    @Test
    void bytesWithoutAPieceUseByteFallback() {
        // '😀' has no piece: its four UTF-8 bytes F0 9F 98 80 become <0xF0>.. (ids 3 + byte).
        int[] ids = tok.encode("😀", false);
        assertArrayEquals(new int[]{410, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}, ids);
        assertEquals("😀", tok.decode(ids));
    }
}
