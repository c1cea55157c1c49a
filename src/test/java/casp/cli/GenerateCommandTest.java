package casp.cli;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp generate` on stories260K against reference/greedy_200*.json, and its user errors. */
class GenerateCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode ref(String name) throws Exception {
        return JSON.readTree(TestData.shared("models/stories260K/reference/" + name).toFile());
    }

    static String model() {
        return TestData.model("stories260K").toString();
    }

    /** prompt_ids + ids of the command's JSON equal the reference ids; text equals the reference text. */
    void checkGreedy(JsonNode expected, String... extra) throws Exception {
        int steps = expected.get("ids").size() - expected.get("prompt_ids").size();
        String[] args = new String[5 + extra.length];
        args[0] = "generate"; args[1] = "--model"; args[2] = model(); args[3] = "--max-tokens"; args[4] = Integer.toString(steps);
        System.arraycopy(extra, 0, args, 5, extra.length);
        String[] withJson = java.util.Arrays.copyOf(args, args.length + 1);
        withJson[args.length] = "--json";
        CliRunner.Result r = CliRunner.run(withJson);
        assertEquals(0, r.exitCode(), r.err());
        JsonNode got = JSON.readTree(r.out());
        assertEquals(expected.get("prompt_ids"), got.get("prompt_ids"));
        assertEquals(steps, got.get("ids").size());
        for (int i = 0; i < steps; i++)
            assertEquals(expected.get("ids").get(expected.get("prompt_ids").size() + i).asInt(), got.get("ids").get(i).asInt(), "token " + i);
        String refText = expected.get("text").asText();
        String prompt = expected.get("prompt").asText();
        assertEquals(refText, prompt + got.get("text").asText(), "prompt + generated text = the reference decode of all ids");

        // Without --json the text is streamed to stdout: prompt, then the continuation.
        CliRunner.Result plain = CliRunner.run(args);
        assertEquals(0, plain.exitCode(), plain.err());
        assertEquals(refText + System.lineSeparator(), plain.out());
    }

    @Test
    void greedyFromEmptyPromptReproducesReference() throws Exception {
        checkGreedy(ref("greedy_200.json"));
    }

    @Test
    void greedyFromPromptReproducesReference() throws Exception {
        checkGreedy(ref("greedy_200_prompt.json"), "--prompt", "Once upon a time");
    }

    @Test
    void samplingIsReproducibleWithASeed() throws Exception {
        String[] a = {"generate", "--model", model(), "--max-tokens", "30", "--temperature", "1.0", "--seed", "5", "--json"};
        CliRunner.Result r1 = CliRunner.run(a), r2 = CliRunner.run(a);
        assertEquals(0, r1.exitCode(), r1.err());
        assertEquals(JSON.readTree(r1.out()).get("ids"), JSON.readTree(r2.out()).get("ids"));
        JsonNode greedy = JSON.readTree(CliRunner.run("generate", "--model", model(), "--max-tokens", "30", "--json").out());
        assertNotEquals(greedy.get("ids"), JSON.readTree(r1.out()).get("ids"), "temperature 1 samples rather than taking the argmax");
    }

    @Test
    void maxTokensIsCappedByMaxPositions() throws Exception {
        CliRunner.Result r = CliRunner.run("generate", "--model", model(), "--max-tokens", "100000", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = JSON.readTree(r.out());
        int eos = 2;
        int n = j.get("ids").size();
        boolean stoppedAtEos = n > 0 && j.get("ids").get(n - 1).asInt() == eos;
        assertTrue(stoppedAtEos || n == 512 - 1, "stops at eos or after 511 new tokens (512 positions), got " + n);
    }

    @Test
    void userErrorsExitWithCode2() {
        CliRunner.Result r = CliRunner.run("generate", "--model", "/no/such/model", "--prompt", "x");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("/no/such/model"), r.err());
        r = CliRunner.run("generate", "--model", model(), "--temperature", "-1");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--temperature"), r.err());
        r = CliRunner.run("generate", "--model", model(), "--max-tokens", "-3");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--max-tokens"), r.err());
        r = CliRunner.run("generate", "--model", model(), "--max-tokens", "lots");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--max-tokens"), r.err());
    }
}
