package casp.eval;

import casp.TestData;
import casp.io.LlavaDataset;
import casp.model.LlavaModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** `eval vqa` numbers against the reference metrics of both test models (full dev sets). */
class VqaEvaluatorTest {

    @Test
    void normalizeLowercasesAndStripsPunctuation() {
        assertEquals("the triangle is blue", VqaEvaluator.normalize(" The triangle is blue. "));
        assertEquals("yes", VqaEvaluator.normalize("Yes!"));
        assertEquals("a b", VqaEvaluator.normalize("A,\n  b"));
        assertNotEquals(VqaEvaluator.normalize("blue"), VqaEvaluator.normalize("blues"));
    }

    /** The answer-logits hook sees exactly the rows the answer NLL is computed from. */
    @Test
    void answerLogitsHookSeesTheScoredRows() {
        Path root = TestData.shared("models/tiny-llava");
        LlavaModel m = LlavaModel.load(root.resolve("model"));
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        Map<Integer, Double> nll = new HashMap<>();
        Map<Integer, Integer> count = new HashMap<>();
        VqaEvaluator.AnswerLogitsListener hook = (index, sample, answerIds, logits, vocab) -> {
            assertEquals(answerIds.length * vocab, logits.length);
            assertEquals(2, answerIds[answerIds.length - 1], "answer ends with </s>");
            double s = 0;
            for (int r = 0; r < answerIds.length; r++) {
                double max = Double.NEGATIVE_INFINITY, z = 0;
                for (int v = 0; v < vocab; v++) max = Math.max(max, logits[r * vocab + v]);
                for (int v = 0; v < vocab; v++) z += Math.exp(logits[r * vocab + v] - max);
                s += max + Math.log(z) - logits[r * vocab + answerIds[r]];
            }
            nll.put(index, s);
            count.put(index, answerIds.length);
        };
        VqaEvaluator.Result r = VqaEvaluator.evaluate(m, dev, new VqaEvaluator.Options(4, 48, List.of(), hook), null);
        assertEquals(4, r.n());
        assertEquals(4, nll.size());
        for (int i = 0; i < 4; i++) {
            assertEquals(r.samples().get(i).answerNll(), nll.get(i), 1e-6);
            assertEquals(r.samples().get(i).answerTokens(), count.get(i));
        }
    }

    @Test
    void tinyLlavaDevMatchesReferenceMetrics() throws Exception {
        Path root = TestData.shared("models/tiny-llava");
        LlavaModel m = LlavaModel.load(root.resolve("model"));
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        JsonNode metrics = new ObjectMapper().readTree(root.resolve("reference/metrics.json").toFile()).get("dev");
        VqaEvaluator.Result r = VqaEvaluator.evaluate(m, dev, new VqaEvaluator.Options(0, 48, List.of(), null), null);
        assertEquals(500, r.n());
        assertEquals(metrics.get("answer_tokens").asLong(), r.answerTokens());
        double ppl = metrics.get("answer_token_perplexity").asDouble();
        assertEquals(ppl, r.answerPpl(), 0.005 * ppl, "answer-token perplexity");
        assertEquals(metrics.get("exact_match_all").asDouble(), r.accuracy(), 0.01, "exact match");
        // Prediction by prediction against the reference's greedy answers.
        JsonNode preds = new ObjectMapper().readTree(root.resolve("reference/dev_predictions.json").toFile());
        Map<String, String> want = new HashMap<>();
        for (JsonNode p : preds) want.put(p.get("id").asText(), p.get("pred").asText());
        int same = 0;
        for (VqaEvaluator.SampleResult s : r.samples()) if (s.prediction().equals(want.get(s.id()))) same++;
        assertTrue(same >= 495, same + " of 500 greedy answers equal the reference's");
        System.out.printf("tiny-llava dev: acc %.4f ppl %.5f tokens %d, %d/500 identical answers, %.1f s%n",
                r.accuracy(), r.answerPpl(), r.answerTokens(), same, r.seconds());
    }

    @Test
    void llavaStoriesDevCaptionPerplexity() throws Exception {
        Path root = TestData.shared("models/llava-stories");
        LlavaModel m = LlavaModel.load(root.resolve("model"));
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        JsonNode metrics = new ObjectMapper().readTree(root.resolve("reference/metrics.json").toFile())
                .get("dev").get("float").get("images");
        VqaEvaluator.Result r = VqaEvaluator.evaluate(m, dev, new VqaEvaluator.Options(0, 40, List.of("."), null), null);
        assertEquals(300, r.n());
        assertEquals(metrics.get("caption_tokens").asLong(), r.answerTokens());
        double ppl = metrics.get("caption_ppl").asDouble();
        assertEquals(ppl, r.answerPpl(), 0.005 * ppl, "caption perplexity");
        // Its exact match compares the raw caption; ours ignores case and punctuation, so it can only be higher.
        assertTrue(r.accuracy() >= metrics.get("exact_match").asDouble() - 1e-9, "exact match " + r.accuracy());
        System.out.printf("llava-stories dev: acc %.4f ppl %.5f tokens %d, %.1f s%n", r.accuracy(), r.answerPpl(),
                r.answerTokens(), r.seconds());
    }
}
