package casp.io;

import casp.TestData;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * decode(encode(x)) == x for awkward UTF-8 text on every tokenizer, and the stream decoder
 * returns exactly the text of the full decode, piece by piece, never half a character.
 */
class TokenizerRoundTripTest {

    /** Text that the "▁" tokenizers cannot give back: "▁" itself decodes to a space (as in HF). */
    private static final String[] LLAMA_AVOID = {"\u2581", "<s>", "</s>", "<unk>", "<image>", "<pad>"};
    private static final String[] BYTE_LEVEL_AVOID = {"<s>", "</s>", "<unk>", "<image>", "<pad>",
            "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"};

    private static final String[] FIXED = {
            "", " ", "  ", "   x", "x   ", " leading", "trailing ", "double  space", "\n", "\n\n\n", " \n \n ",
            "line1\nline2\r\nline3\rend", "\ttab\t", "😀", "👍🏽 🧑‍🚀 family: 👨‍👩‍👧‍👦", "中文 日本語 한국어",
            "e\u0301 vs \u00e9", "\u0000\u0001\u0002\u001f\u007f", "\u00a0nbsp\u3000ideographic\u2028ls\u0085nel",
            "\u200b\u200d\ufeff", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈", "don't I'LL we'RE", "123456789 3.14159", "“quotes” — dash … ™ €",
            "Once upon a time, there was a little girl named Lily.", "\uDBFF\uDFFF\uDB80\uDC00"};

    /** The byte-level tokenizers built in the test (run everywhere). */
    private static List<Tokenizer> synthetic() {
        return List.of(TokenizerTestSupport.llama3Like(), TokenizerTestSupport.qwen2Like());
    }

    /** The tokenizers of the shared models (skipped where ../shared is absent). */
    private static List<Tokenizer> shared() {
        List<Tokenizer> out = new ArrayList<>();
        for (String m : new String[]{"stories260K", "tiny-llava", "llava-stories"}) {
            out.add(Tokenizer.load(TestData.modelDir(m).resolve("model")));
        }
        return out;
    }

    private static boolean metaspace(Tokenizer t) {
        return t.tokenId("\u2581").isPresent();
    }

    private static String clean(Tokenizer t, String s) {
        for (String a : metaspace(t) ? LLAMA_AVOID : BYTE_LEVEL_AVOID) s = s.replace(a, "x");
        // Qwen2-like normalizes NFC: compare with the normalized text.
        if (t.source().startsWith("qwen2")) s = java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFC);
        return s;
    }

    @Test
    void roundTripSynthetic() {
        roundTrip(synthetic(), 1);
    }

    @Test
    void roundTripSharedModels() {
        roundTrip(shared(), 2);
    }

    @Test
    void streamSynthetic() {
        stream(synthetic(), 3);
    }

    @Test
    void streamSharedModels() {
        stream(shared(), 4);
    }

    private static void roundTrip(List<Tokenizer> tokenizers, long seed) {
        Random rnd = new Random(seed);
        for (Tokenizer t : tokenizers) {
            List<String> texts = new ArrayList<>(List.of(FIXED));
            for (int i = 0; i < 400; i++) texts.add(TokenizerTestSupport.randomText(rnd, 40));
            for (String raw : texts) {
                String x = clean(t, raw);
                assertEquals(x, t.decode(t.encode(x, true)), () -> t + " on " + escape(x));
                assertEquals(x, t.decode(t.encode(x, false), false), () -> t + " (no specials) on " + escape(x));
            }
        }
    }

    private static void stream(List<Tokenizer> tokenizers, long seed) {
        Random rnd = new Random(seed);
        for (Tokenizer t : tokenizers) {
            for (int i = 0; i < 150; i++) {
                String x = clean(t, TokenizerTestSupport.randomText(rnd, 30));
                int[] ids = t.encode(x, true);
                // Context = the first k ids (the "prompt", complete text); the rest are "generated".
                int k = rnd.nextInt(ids.length + 1);
                while (k > 0 && t.decode(java.util.Arrays.copyOf(ids, k)).contains("\uFFFD")) k--;
                int[] context = java.util.Arrays.copyOf(ids, k);
                String before = t.decode(context);
                String full = t.decode(ids);
                TokenizerStream s = t.stream(context);
                StringBuilder out = new StringBuilder();
                for (int j = k; j < ids.length; j++) {
                    String piece = s.push(ids[j]);
                    assertFalse(piece.contains("\uFFFD"), () -> t + ": half a character streamed for " + escape(x));
                    out.append(piece);
                }
                // Everything is complete text here, so nothing is held back at the end.
                assertEquals("", s.flush(), () -> t + " held text back on " + escape(x));
                assertEquals(full, before + out, () -> t + " streamed wrongly on " + escape(x));
            }
        }
    }

    @Test
    void streamHoldsBackASplitByteLevelCharacter() {
        Tokenizer bl = TokenizerTestSupport.llama3Like();
        int[] ids2 = bl.encode("中", false); // three byte symbols
        assertEquals(3, ids2.length);
        TokenizerStream s3 = bl.stream(new int[0]);
        assertEquals("", s3.push(ids2[0]));
        assertEquals("", s3.push(ids2[1]));
        assertEquals("中", s3.push(ids2[2]));
    }

    @Test
    void streamHoldsBackASplitByteFallbackCharacter() {
        Tokenizer t = Tokenizer.load(TestData.modelDir("stories260K").resolve("model"));
        int[] ids = t.encode("a😀b", false); // ▁a, <0xF0> <0x9F> <0x98> <0x80>, b
        assertArrayEquals(new int[]{3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}, java.util.Arrays.copyOfRange(ids, 1, 5));
        TokenizerStream s = t.stream(new int[]{1});
        List<String> pieces = new ArrayList<>();
        for (int id : ids) pieces.add(s.push(id));
        assertEquals(List.of("a", "", "", "", "😀", "b"), pieces);
        // An incomplete character at the end comes out as U+FFFD on flush.
        TokenizerStream s2 = t.stream(new int[]{1});
        assertEquals("", s2.push(3 + 0xF0));
        assertEquals("\uFFFD", s2.flush());
    }

    private static String escape(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            if (cp < 32 || cp > 126) b.append(String.format("\\u{%x}", cp));
            else b.appendCodePoint(cp);
        });
        return b.append('"').toString();
    }
}
