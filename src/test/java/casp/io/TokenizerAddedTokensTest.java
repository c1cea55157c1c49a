package casp.io;

import casp.TestData;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;

import static casp.io.TokenizerTestSupport.tokens;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Added-token options as Hugging Face tokenizers applies them (expected values checked against
 * tokenizers 0.23): lstrip / rstrip swallow neighbouring whitespace, single_word needs non-word
 * neighbours (Unicode \w: letters, marks, digits, '_'), the longest token wins at a position, and
 * a normalized token is matched (and decoded) by its normalized content.
 */
class TokenizerAddedTokensTest {

    /** Adds magic (normalized), &lt;L&gt; (lstrip), &lt;R&gt; (rstrip), ok (single_word), &lt;R&gt;&lt;L&gt;, "a b" (normalized). */
    private static String withAddedTokens(String json) throws IOException {
        ObjectNode root = (ObjectNode) TokenizerTestSupport.JSON.readTree(json);
        ArrayNode added = (ArrayNode) root.get("added_tokens");
        int next = root.get("model").get("vocab").size();
        for (var a : added) next = Math.max(next, a.get("id").asInt() + 1);
        Object[][] specs = {
                // content, lstrip, rstrip, single_word, normalized, special
                {"magic", false, false, false, true, false},
                {"<L>", true, false, false, false, true},
                {"<R>", false, true, false, false, true},
                {"ok", false, false, true, false, false},
                {"<R><L>", false, false, false, false, false},
                {"a b", false, false, false, true, false}};
        for (Object[] s : specs) {
            added.addObject().put("id", next++).put("content", (String) s[0]).put("lstrip", (Boolean) s[1])
                    .put("rstrip", (Boolean) s[2]).put("single_word", (Boolean) s[3])
                    .put("normalized", (Boolean) s[4]).put("special", (Boolean) s[5]);
        }
        return root.toString();
    }

    @Test
    void byteLevel() throws IOException {
        Tokenizer t = Tokenizer.fromJson(withAddedTokens(TokenizerTestSupport.byteLevelJson(
                TokenizerTestSupport.LLAMA3_PATTERN, TokenizerTestSupport.MERGES, false, false, false, false)), null, "bl");
        assertEquals(List.of("a", "Ġ", "magic", "Ġ", "b"), tokens(t, t.encode("a magic b", false)));
        assertEquals(List.of("a", "magic"), tokens(t, t.encode("amagic", false)));
        // lstrip takes the whitespace before <L>, rstrip the whitespace after <R>.
        assertEquals(List.of("x", "<L>", "y"), tokens(t, t.encode("x\u3000 <L>y", false)));
        assertEquals("xy", t.decode(t.encode("x\u3000 <L>y", false)));
        assertEquals(List.of("<R>", "z"), tokens(t, t.encode("<R>  z", false)));
        assertEquals("", t.decode(t.encode("<R> <L>", false)));
        // single_word: "ok" between non-word characters only.
        assertEquals(List.of("ok", "Ġ", "g", "o"), tokens(t, t.encode("ok go", false)));
        assertEquals(List.of("(", "ok", ")"), tokens(t, t.encode("(ok)", false)));
        assertEquals(List.of("t", "o", "o", "k"), tokens(t, t.encode("took", false)));
        assertEquals(List.of("o", "k", "_"), tokens(t, t.encode("ok_", false)));
        assertEquals(List.of("e", "Ì", "ģ", "o", "k"), tokens(t, t.encode("e\u0301ok", false))); // a mark is a word char
        // Longest match wins.
        assertEquals(List.of("<R><L>"), tokens(t, t.encode("<R><L>", false)));
        assertEquals(List.of("c", "a b"), tokens(t, t.encode("ca b", false)));
        assertEquals("ca b", t.decode(t.encode("ca b", false)));
    }

    @Test
    void metaspaceNormalizedTokens() throws IOException {
        String json = Files.readString(TestData.modelDir("stories260K").resolve("model/tokenizer.json"));
        Tokenizer t = Tokenizer.fromJson(withAddedTokens(json), null, "st");
        // Normalized content: "magic" is matched as "▁magic" after Prepend + Replace.
        assertEquals(List.of("▁a", "▁magic", "▁b"), tokens(t, t.encode("a magic b", false)));
        assertEquals("a magic b", t.decode(t.encode("a magic b", true)));
        assertEquals(List.of("▁a", "m", "a", "g", "i", "c"), tokens(t, t.encode("amagic", false)));
        assertEquals(List.of("▁a▁b"), tokens(t, t.encode("a b", false)));
        assertEquals(List.of("▁c", "a", "▁b"), tokens(t, t.encode("ca b", false)));
        // Raw tokens split the text first; every text segment gets its own "▁".
        assertEquals(List.of("▁", "x", "<L>", "▁y"), tokens(t, t.encode("x <L>y", false)));
        assertEquals("<s> x<L> y", t.decode(t.encode("x <L>y", true), false));
        assertEquals(List.of("ok", "▁", "▁g", "o"), tokens(t, t.encode("ok go", false)));
        assertEquals("ok  go", t.decode(t.encode("ok go", true)));
    }
}
