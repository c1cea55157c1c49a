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
