package casp.io;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

import static casp.io.TokenizerStoriesTest.ints;
import static casp.io.TokenizerStoriesTest.json;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tokenizers of the two LLaVA assets against their reference input ids.
 *
 * <p>The reference input_ids are the tokenizer's ids with the single &lt;image&gt; placeholder
 * expanded to image_seq_length (config.json: 64) copies of image_token_index, as llava-hf
 * processors do; {@link Tokenizer#expandToken} reproduces that, so the whole id list is compared.
 */
class TokenizerLlavaTest {

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void tinyLlavaParitySamples() throws IOException {
        Path dir = TestData.modelDir("tiny-llava");
        Tokenizer tok = Tokenizer.load(dir.resolve("model"));
        JsonNode config = json(dir.resolve("model/config.json"));
        int imageToken = config.get("image_token_index").asInt();
        int seqLen = config.get("image_seq_length").asInt();
        assertEquals(imageToken, tok.tokenId("<image>").orElseThrow());
        for (JsonNode s : json(dir.resolve("reference/parity_samples.json")).get("samples")) {
            String prompt = s.get("prompt_text").asText();
            int[] ids = tok.encode(prompt, true);
            assertEquals(1, Arrays.stream(ids).filter(i -> i == imageToken).count());
            assertArrayEquals(ints(s.get("input_ids")), Tokenizer.expandToken(ids, imageToken, seqLen), s.get("id").asText());
            assertEquals("<s>" + prompt, tok.decode(ids, false));
            // Greedy answer ids (ending in </s>) decode to the answer after its leading space ...
            int[] answer = ints(s.get("greedy_token_ids"));
            assertEquals(" " + s.get("greedy_answer").asText(), tok.decode(answer));
            // ... and the prompt followed by that answer encodes to prompt ids + answer ids.
            assertArrayEquals(concat(ids, answer), tok.encode(prompt + " " + s.get("greedy_answer").asText() + "</s>", true));
        }
    }

    @Test
    void tinyLlavaDevConversationsRoundTrip() throws IOException {
        Path dir = TestData.modelDir("tiny-llava");
        Tokenizer tok = Tokenizer.load(dir.resolve("model"));
        int image = tok.tokenId("<image>").orElseThrow();
        int n = 0;
        for (JsonNode rec : json(dir.resolve("data/dev/dev.json"))) {
            String human = rec.get("conversations").get(0).get("value").asText();
            String answer = rec.get("conversations").get(1).get("value").asText();
            // LLaVA-1.5 format of the model card: USER: <image>\n{q} ASSISTANT: {a}</s>
            String text = "USER: " + human + " ASSISTANT: " + answer + "</s>";
            int[] ids = tok.encode(text, true);
            assertEquals(1, ids[0]);
            assertEquals(2, ids[ids.length - 1]);
            assertEquals(1, Arrays.stream(ids).filter(i -> i == image).count());
            assertEquals("<s>" + text, tok.decode(ids, false));
            assertEquals(answer, tok.decode(tok.encode(answer, false)));
            n++;
        }
        assertEquals(500, n);
        for (JsonNode p : json(dir.resolve("reference/dev_predictions.json"))) {
            String pred = p.get("pred").asText();
            assertEquals(pred, tok.decode(tok.encode(pred, true)));
        }
    }

    @Test
    void llavaStoriesParitySamples() throws IOException {
        Path dir = TestData.modelDir("llava-stories");
        Tokenizer tok = Tokenizer.load(dir.resolve("model"));
        JsonNode config = json(dir.resolve("model/config.json"));
        int imageToken = config.get("image_token_index").asInt();
        int seqLen = config.get("image_seq_length").asInt();
        assertEquals(514, tok.vocabSize());
        assertEquals(imageToken, tok.tokenId("<image>").orElseThrow());
        for (JsonNode s : json(dir.resolve("reference/parity_samples.json")).get("samples")) {
            // "<image>\n": the text after the special token is its own segment and gets the "▁"
            // prefix of the normalizer: [<s>, <image>, ▁, <0x0A>].
            int[] prompt = tok.encode(s.get("model_text_prompt").asText(), true);
            assertArrayEquals(new int[]{1, imageToken, 410, 13}, prompt);
            assertArrayEquals(ints(s.get("input_ids")), Tokenizer.expandToken(prompt, imageToken, seqLen));
            int[] caption = ints(s.get("gold_caption_ids"));
            assertArrayEquals(concat(prompt, caption), tok.encode("<image>\n" + s.get("gold_caption").asText(), true));
            int[] greedy = ints(s.get("greedy_token_ids"));
            assertEquals(s.get("greedy_text").asText(), tok.decode(greedy));
            assertArrayEquals(concat(prompt, greedy), tok.encode("<image>\n" + s.get("greedy_text").asText(), true));
        }
        // Hugging Face decodes <image> + "▁\n" with the space the "▁" stands for.
        assertEquals("<s><image> \n", tok.decode(new int[]{1, imageToken, 410, 13}, false));
    }

    @Test
    void llavaStoriesDevCaptions() throws IOException {
        Path dir = TestData.modelDir("llava-stories");
        Tokenizer tok = Tokenizer.load(dir.resolve("model"));
        int n = 0;
        for (JsonNode rec : json(dir.resolve("data/dev/dev.json"))) {
            String caption = rec.get("caption").asText();
            int[] ids = tok.encode(rec.get("model_text").asText(), true);
            assertArrayEquals(new int[]{1, 512, 410, 13}, Arrays.copyOf(ids, 4));
            // Skipping the specials leaves " \n" + caption; the decoder strips the one leading space.
            assertEquals("\n" + caption, tok.decode(ids));
            assertEquals(caption, tok.decode(tok.encode(caption, true)));
            n++;
        }
        assertEquals(300, n);
        // The stories260K tokenizer gives the same ids on text without added tokens.
        Tokenizer stories = Tokenizer.load(TestData.modelDir("stories260K").resolve("model"));
        for (JsonNode p : json(dir.resolve("reference/dev_predictions.json")).get("dev_float")) {
            String pred = p.get("pred").asText();
            assertArrayEquals(stories.encode(pred, true), tok.encode(pred, true));
            assertTrue(tok.decode(tok.encode(pred, true)).equals(pred), pred);
        }
    }
}
