package casp.cli;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** `casp generate --image` and `casp eval vqa` on tiny-llava, and their user errors. */
class LlavaCommandsTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path root() {
        return TestData.shared("models/tiny-llava");
    }

    @Test
    void generateWithImageAnswersLikeTheReference() throws Exception {
        JsonNode s = JSON.readTree(root().resolve("reference/parity_samples.json").toFile()).get("samples").get(0);
        CliRunner.Result r = CliRunner.run("generate", "--model", root().resolve("model").toString(),
                "--image", root().resolve(s.get("image").asText()).toString(),
                "--prompt", "What color is the triangle?", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode got = JSON.readTree(r.out());
        assertEquals(s.get("input_ids"), got.get("prompt_ids"));
        assertEquals(s.get("greedy_token_ids"), got.get("ids"));
        assertEquals(s.get("greedy_answer").asText(), got.get("text").asText().strip());
        // Streamed text mode prints the prompt (special tokens left out) and the answer.
        CliRunner.Result t = CliRunner.run("generate", "--model", root().resolve("model").toString(),
                "--image", root().resolve(s.get("image").asText()).toString(), "--prompt", "What color is the triangle?");
        assertEquals(0, t.exitCode(), t.err());
        assertTrue(t.out().contains("ASSISTANT: " + s.get("greedy_answer").asText()), t.out());
    }

    @Test
    void generateImageErrors() {
        String model = root().resolve("model").toString();
        CliRunner.Result bad = CliRunner.run("generate", "--model", model, "--image",
                TestData.shared("images/photos/truncated.jpg").toString(), "--prompt", "x");
        assertEquals(2, bad.exitCode());
        assertTrue(bad.err().contains("truncated.jpg"), bad.err());
        CliRunner.Result missing = CliRunner.run("generate", "--model", model, "--image", "/nonexistent/cat.png", "--prompt", "x");
        assertEquals(2, missing.exitCode());
        assertTrue(missing.err().contains("cat.png"), missing.err());
        CliRunner.Result text = CliRunner.run("generate", "--model", TestData.model("stories260K").toString(),
                "--image", root().resolve("data/dev/images/img_000000.png").toString(), "--prompt", "x");
        assertEquals(2, text.exitCode());
        assertTrue(text.err().contains("--image needs a LLaVA model"), text.err());
    }

    @Test
    void evalVqaJsonOnTheFirstSamples(@TempDir Path tmp) throws Exception {
        Path preds = tmp.resolve("preds.json");
        CliRunner.Result r = CliRunner.run("eval", "vqa", "--model", root().resolve("model").toString(),
                "--data", root().resolve("data/dev/dev.json").toString(), "--images", root().resolve("data/dev/images").toString(),
                "--limit", "25", "--json", "--predictions", preds.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode o = JSON.readTree(r.out());
        assertEquals(25, o.get("n").asInt());
        // Same answers as the reference predictions of these 25 samples, so the same accuracy.
        JsonNode ref = JSON.readTree(root().resolve("reference/dev_predictions.json").toFile());
        int correct = 0;
        for (int i = 0; i < 25; i++) if (ref.get(i).get("correct").asBoolean()) correct++;
        assertEquals(correct / 25.0, o.get("accuracy").asDouble(), 1e-12);
        assertTrue(o.get("answer_ppl").asDouble() > 1 && o.get("answer_ppl").asDouble() < 2, r.out());
        JsonNode p = JSON.readTree(preds.toFile());
        assertEquals(25, p.size());
        for (int i = 0; i < 25; i++) assertEquals(ref.get(i).get("pred").asText(), p.get(i).get("pred").asText());
        assertFalse(Files.exists(tmp.resolve("preds.json.tmp")));
        // Text mode: a summary with the accuracy and the per-type table.
        CliRunner.Result t = CliRunner.run("eval", "vqa", "--model", root().resolve("model").toString(),
                "--data", root().resolve("data/dev/dev.json").toString(), "--limit", "3");
        assertEquals(0, t.exitCode(), t.err());
        assertTrue(t.out().contains("exact match") && t.out().contains("answer ppl"), t.out());
    }

    @Test
    void evalVqaUserErrors(@TempDir Path tmp) throws Exception {
        String model = root().resolve("model").toString(), data = root().resolve("data/dev/dev.json").toString();
        CliRunner.Result r1 = CliRunner.run("eval", "vqa", "--model", model, "--data", tmp.resolve("none.json").toString());
        assertEquals(2, r1.exitCode());
        assertTrue(r1.err().contains("none.json"), r1.err());
        CliRunner.Result r2 = CliRunner.run("eval", "vqa", "--model", model, "--data", data, "--limit", "0");
        assertEquals(2, r2.exitCode());
        assertTrue(r2.err().contains("--limit"), r2.err());
        CliRunner.Result r3 = CliRunner.run("eval", "vqa", "--model", model, "--data", data, "--images", tmp.toString());
        assertEquals(2, r3.exitCode());
        assertTrue(r3.err().contains("img_000000.png"), r3.err());
        Files.writeString(tmp.resolve("bad.json"), "[{\"id\": \"q1\", \"conversations\": []}]");
        CliRunner.Result r4 = CliRunner.run("eval", "vqa", "--model", model, "--data", tmp.resolve("bad.json").toString(),
                "--images", tmp.toString());
        assertEquals(2, r4.exitCode());
        assertTrue(r4.err().contains("bad.json") && r4.err().contains("q1"), r4.err());
        CliRunner.Result r5 = CliRunner.run("eval", "vqa", "--model", TestData.model("stories260K").toString(), "--data", data,
                "--images", root().resolve("data/dev/images").toString());
        assertEquals(2, r5.exitCode());
        assertTrue(r5.err().contains("not a LLaVA model"), r5.err());
    }
}
