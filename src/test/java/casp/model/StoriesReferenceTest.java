package casp.model;

import casp.TestData;
import casp.eval.Perplexity;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The real pretrained stories260K against the reference outputs in ../shared/models/stories260K/reference. */
class StoriesReferenceTest {
    static LlamaModel model;
    static Path ref;

    @BeforeAll
    static void load() {
        model = LlamaModel.load(TestData.model("stories260K"));
        ref = TestData.shared("models/stories260K/reference");
    }

    static JsonNode json(String name) throws IOException {
        return new ObjectMapper().readTree(ref.resolve(name).toFile());
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }

    @Test
    void logitsOfReferencePromptMatch() throws IOException {
        JsonNode j = json("logits_prompt.json");
        int[] ids = ints(j.get("input_ids"));
        JsonNode expected = j.get("logits");
        assertEquals(model.vocabSize(), expected.size());
        assertEquals(ids.length - 1, j.get("position").asInt());
        float[] logits = model.forward(ids, null, false);
        double maxErr = 0;
        for (int i = 0; i < logits.length; i++) maxErr = Math.max(maxErr, Math.abs(logits[i] - expected.get(i).asDouble()));
        assertTrue(maxErr < 1e-4, "max abs logit error " + maxErr);
        // The same row of an all-positions pass agrees too.
        float[] all = model.forward(ids, null, true);
        int v = model.vocabSize();
        for (int i = 0; i < v; i++) assertEquals(logits[i], all[(ids.length - 1) * v + i], 1e-5f);
    }

    @Test
    void greedyFromBosReproducesReference() throws IOException {
        checkGreedy(json("greedy_200.json"));
    }

    @Test
    void greedyFromPromptReproducesReference() throws IOException {
        checkGreedy(json("greedy_200_prompt.json"));
    }

    private void checkGreedy(JsonNode j) {
        int[] prompt = ints(j.get("prompt_ids"));
        int[] expected = ints(j.get("ids"));
        int steps = expected.length - prompt.length;
        assertArrayEquals(ints(j.get("generated_ids")), java.util.Arrays.copyOfRange(expected, prompt.length, expected.length));
        int[] seen = new int[steps];
        int[] count = {0};
        int[] gen = new Generator(model).generate(prompt, steps, Sampler.greedy(), new int[]{model.config().eosTokenId()},
                id -> { seen[count[0]++] = id; return true; });
        int[] all = new int[prompt.length + gen.length];
        System.arraycopy(prompt, 0, all, 0, prompt.length);
        System.arraycopy(gen, 0, all, prompt.length, gen.length);
        assertArrayEquals(expected, all);
        assertArrayEquals(gen, seen, "the callback saw every token in order");
    }

    @Test
    void kvCacheDecodingMatchesFullPrefill() {
        int[] ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421};
        int v = model.vocabSize();
        float[] full = model.forward(ids, null, true);
        KvCache cache = model.newCache(32);
        // Prefill 5 tokens, then 3 in one batch, then one at a time.
        float[] a = model.forwardEmbeddings(model.embed(java.util.Arrays.copyOfRange(ids, 0, 5)), 5, cache, true);
        float[] b = model.forwardEmbeddings(model.embed(java.util.Arrays.copyOfRange(ids, 5, 8)), 3, cache, true);
        float[] step = new float[v];
        double maxErr = 0;
        for (int i = 0; i < 5 * v; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - full[i]));
        for (int i = 0; i < 3 * v; i++) maxErr = Math.max(maxErr, Math.abs(b[i] - full[5 * v + i]));
        for (int t = 8; t < ids.length; t++) {
            model.decode(ids[t], cache, step);
            for (int i = 0; i < v; i++) maxErr = Math.max(maxErr, Math.abs(step[i] - full[t * v + i]));
        }
        assertEquals(ids.length, cache.length());
        assertTrue(maxErr < 1e-4, "KV-cache logits differ from the full prefill by " + maxErr);
    }

    /**
     * Token-level perplexity without the tokenizer: the reference stream of eval_tokens.json, full
     * 256-token windows only (ppl.json "full_windows_only").
     */
    @Test
    void perplexityOfReferenceTokenStream() throws IOException {
        JsonNode tok = json("eval_tokens.json");
        int n = tok.get("n_tokens").asInt();
        int[] stream = new int[n];
        int k = 0;
        for (JsonNode s : tok.get("stories")) for (JsonNode id : s.get("ids")) stream[k++] = id.asInt();
        assertEquals(n, k);
        JsonNode expected = json("ppl.json").get("full_windows_only");
        int[] calls = {0};
        Perplexity.Result r = Perplexity.evaluate(model, stream, 256, (done, total) -> calls[0]++);
        assertEquals(expected.get("n_windows").asInt(), r.windows());
        assertEquals(r.windows(), calls[0]);
        assertEquals(expected.get("n_predicted").asLong(), r.tokensScored());
        double ppl = expected.get("ppl").asDouble();
        assertEquals(ppl, r.ppl(), ppl * 1e-4, "ppl");
        assertEquals(expected.get("nll_sum_nats").asDouble(), r.nllSum(), 0.5);
    }
}
