package casp.io;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static casp.io.TokenizerTestSupport.bl;
import static casp.io.TokenizerTestSupport.tokens;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Byte-level BPE with the Llama 3 / Qwen2 configuration (Split regex + ByteLevel without regex),
 * on small tokenizer.json files built in the test. The expected pieces follow from the regex's
 * leftmost-first alternation (worked out by hand below; Hugging Face tokenizers 0.23 gives the same).
 */
class TokenizerByteLevelTest {

    private static List<String> bls(String... plain) {
        return Arrays.stream(plain).map(TokenizerTestSupport::bl).toList();
    }

    @Test
    void llama3SplitsFollowTheRegex() {
        Tokenizer t = TokenizerTestSupport.llama3Like();
        // "'s" by the contraction branch; " world" = optional non-letter + letters; digits in
        // threes; "  \n\n" = \s*[\r\n]+ (backtracks to end on the last newline); the lone " "
        // before " x" = \s+(?!\S) backtracked by one; "!!\n" = punctuation with trailing newlines.
        assertEquals(bls("Hello", " world", "'s", " ", "123", "45", "  \n\n", " ", " x", "!!\n"),
                t.pieces("Hello world's 12345  \n\n  x!!\n"));
        // (?i:...) matches upper-case contractions; a tab is a "non-letter" prefix of a word.
        assertEquals(bls("I", "'LL", " don", "'t", "\tgo"), t.pieces("I'LL don't\tgo"));
        assertEquals(bls("abc", " ", "202", "4", "年"), t.pieces("abc 2024年"));
        assertEquals(bls(" ", " leading", " and", " trailing", "  "), t.pieces("  leading and trailing  "));
        assertEquals(bls("x", "\r\n\r\n", "y"), t.pieces("x\r\n\r\ny"));
        assertEquals(bls("😀👍", " ok", "?!"), t.pieces("😀👍 ok?!"));
        // U+3000 is whitespace for the regex (Unicode \s), U+00E9 a letter.
        assertEquals(bls("a", "\u3000", "\u3000b", " é"), t.pieces("a\u3000\u3000b é"));
    }

    @Test
    void qwen2SplitsDigitsOneByOneAndNormalizesNfc() {
        Tokenizer t = TokenizerTestSupport.qwen2Like();
        assertEquals(bls("abc", " ", "2", "0", "2", "4", "年"), t.pieces("abc 2024年"));
        // NFC composes e + combining acute into one letter before splitting.
        assertEquals(bls("caf\u00e9"), t.pieces("cafe\u0301"));
        int[] ids = t.encode("cafe\u0301", true);
        assertEquals("caf\u00e9", t.decode(ids));
        // Qwen2 adds no BOS.
        assertEquals(bls("c"), List.of(t.token(ids[0])));
    }

    @Test
    void mergesApplyByRankAndIgnoreMergesTakesWholeWords() {
        Tokenizer t = TokenizerTestSupport.llama3Like();
        int[] ids = t.encode("Hello world's 12345  \n\n  x!!\n", true);
        assertEquals(List.of("<|begin_of_text|>", "H", "e", "l", "l", "o", bl(" world"), "'s", bl(" "), "123", "4", "5",
                bl(" "), bl(" "), bl("\n\n"), bl(" "), bl(" "), "x", "!", "!", bl("\n")), tokens(t, ids));
        // ids: bytes are 0..255 by value, merge results 256.. in merge order, specials after.
        assertEquals(256 + 13, ids[0]);
        assertEquals(256 + 8, ids[6]); // " world" is merge result 8 (in the vocab whole: ignore_merges)
        // Qwen2-like has ignore_merges=false: " world" is built merge by merge and ends the same.
        Tokenizer q = TokenizerTestSupport.qwen2Like();
        assertEquals(List.of(bl(" world"), bl(" the"), "in", "k"), tokens(q, q.encode(" world theink", false)));
    }

    @Test
    void lowerRankWinsOverLeftmostAndTiesGoLeft() {
        String[][] merges = {{"y", "z"}, {"x", "y"}, {"a", "a"}, {"b", "c"}, {"ab", "c"}, {"a", "b"}};
        Tokenizer t = Tokenizer.fromJson(TokenizerTestSupport.byteLevelJson(TokenizerTestSupport.LLAMA3_PATTERN, merges,
                false, false, false, false), null, "ranks");
        // y+z has rank 0 although x+y is further left.
        assertEquals(List.of("x", "yz"), tokens(t, t.encode("xyz", false)));
        // Equal pairs merge left to right.
        assertEquals(List.of("aa", "aa", "a"), tokens(t, t.encode("aaaaa", false)));
        // b+c (rank 3) beats a+b (rank 5), so "ab c" can never apply: a, bc.
        assertEquals(List.of("a", "bc"), tokens(t, t.encode("abc", false)));
    }

    @Test
    void specialTokensAreMatchedBeforeSplitting() {
        Tokenizer t = TokenizerTestSupport.llama3Like();
        int eot = t.tokenId("<|eot_id|>").orElseThrow();
        int[] ids = t.encode("the world<|eot_id|> the 123", false);
        assertEquals(List.of("t", "he", bl(" world"), "<|eot_id|>", bl(" the"), bl(" "), "123"), tokens(t, ids));
        assertEquals(eot, ids[3]);
        assertTrue(t.isSpecial(eot));
        assertEquals("the world the 123", t.decode(ids));
        assertEquals("the world<|eot_id|> the 123", t.decode(ids, false));
        // A partial special token is plain text.
        assertEquals(List.of("<|", "eot"), t.pieces("<|eot"));
        assertEquals(List.of("<", "|", "e", "o", "t"), tokens(t, t.encode("<|eot", false)));
    }

    @Test
    void gpt2ByteLevelPreTokenizerWithPrefixSpace() throws Exception {
        // The classic GPT-2 setup: ByteLevel(add_prefix_space=true, use_regex=true) alone.
        String json = TokenizerTestSupport.byteLevelJson(TokenizerTestSupport.LLAMA3_PATTERN,
                TokenizerTestSupport.MERGES, false, false, false, false);
        ObjectNode root = (ObjectNode) TokenizerTestSupport.JSON.readTree(json);
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", true).put("use_regex", true);
        Tokenizer t = Tokenizer.fromJson(root.toString(), null, "gpt2-test");
        // GPT-2 regex: digits are one run, whitespace before a word stays with it, and
        // \s+(?!\S) leaves the last space for the next word.
        assertEquals(bls(" Hello", " world", "'s", " 12345", "  \n\n ", " x", "!!", "\n"),
                t.pieces("Hello world's 12345  \n\n  x!!\n"));
        assertEquals(bls(" I", "'", "LL"), t.pieces("I'LL"));
        int[] ids = t.encode("the world", false);
        assertArrayEquals(new int[]{256 + 2, 256 + 8}, ids);
        // The prefix space survives decoding, as in Hugging Face.
        assertEquals(" the world", t.decode(ids));
    }
}
