package casp.cli;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp eval ppl` on stories260K against reference/ppl.json ("whole_file"), and its user errors. */
class EvalPplCommandTest {
    @TempDir
    Path tmp;

    static String model() {
        return TestData.model("stories260K").toString();
    }

    @Test
    void wholeFilePerplexityMatchesReference() throws Exception {
        Path ref = TestData.shared("models/stories260K/reference");
        JsonNode expected = new ObjectMapper().readTree(ref.resolve("ppl.json").toFile()).get("whole_file");
        CliRunner.Result r = CliRunner.run("eval", "ppl", "--model", model(), "--text", ref.resolve("eval.txt").toString(),
                "--ctx", "256", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode got = new ObjectMapper().readTree(r.out());
        double ppl = expected.get("ppl").asDouble();
        assertEquals(ppl, got.get("ppl").asDouble(), ppl * 1e-3, "ppl within 0.1% of " + ppl);
        assertEquals(expected.get("n_predicted").asLong(), got.get("tokens").asLong());
        assertEquals(expected.get("n_windows").asInt(), got.get("windows").asInt());
        assertEquals(expected.get("n_tokens").asInt(), got.get("tokens_in_text").asInt());
        assertTrue(got.get("tokens_per_s").asDouble() > 0);
    }

    @Test
    void userErrorsExitWithCode2() throws Exception {
        Path shortText = tmp.resolve("short.txt");
        Files.writeString(shortText, "Once upon a time");
        String[][] cases = {
                {"--text", tmp.resolve("missing.txt").toString(), "missing.txt"},
                {"--text", shortText.toString(), "--ctx", "256", "fewer than one window"},
                {"--text", shortText.toString(), "--ctx", "1", "--ctx"},
                {"--text", shortText.toString(), "--ctx", "100000", "max_position_embeddings"},
        };
        for (String[] c : cases) {
            String[] args = new String[4 + c.length - 1];
            args[0] = "eval"; args[1] = "ppl"; args[2] = "--model"; args[3] = model();
            System.arraycopy(c, 0, args, 4, c.length - 1);
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(2, r.exitCode(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().contains(c[c.length - 1]), r.err());
            assertTrue(!r.err().contains("Exception"), "no stack trace: " + r.err());
        }
        Path bad = tmp.resolve("bad.txt");
        Files.write(bad, new byte[]{'a', (byte) 0xC3, (byte) 0x28, 'b'});
        CliRunner.Result r = CliRunner.run("eval", "ppl", "--model", model(), "--text", bad.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("UTF-8"), r.err());
    }

    @Test
    void evalWithoutSubcommandListsThem() {
        CliRunner.Result r = CliRunner.run("eval");
        assertTrue(r.out().contains("ppl"), r.out());
    }
}
