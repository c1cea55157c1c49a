package casp.cli;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp bench decode` runs and reports (the numbers themselves are not asserted: timing is noisy). */
class BenchDecodeCommandTest {
    @Test
    void reportsBothModels() throws Exception {
        CliRunner.Result r = CliRunner.run("bench", "decode", "--model", TestData.model("stories260K").toString(), "--synthetic",
                "--hidden", "64", "--layers", "1", "--prompt-tokens", "5", "--decode-tokens", "3", "--runs", "1", "--warmup", "0", "--warmup-seconds", "0", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode res = new ObjectMapper().readTree(r.out()).get("results");
        assertEquals(2, res.size());
        for (JsonNode n : res) {
            assertEquals(5, n.get("prompt_tokens").asInt());
            assertEquals(3, n.get("decode_tokens").asInt());
            assertTrue(n.get("prefill_tokens_per_s").asDouble() > 0 && n.get("decode_tokens_per_s").asDouble() > 0);
        }
    }

    @Test
    void benchesAQuantizedSyntheticModel() throws Exception {
        CliRunner.Result r = CliRunner.run("bench", "decode", "--synthetic-bits", "2", "--hidden", "128", "--layers", "1",
                "--prompt-tokens", "4", "--decode-tokens", "2", "--runs", "1", "--warmup", "0", "--warmup-seconds", "0", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode res = new ObjectMapper().readTree(r.out()).get("results");
        assertEquals(1, res.size());
        assertTrue(res.get(0).get("model").asText().contains("2-bit"), r.out());
        assertTrue(res.get(0).get("decode_tokens_per_s").asDouble() > 0);
    }

    @Test
    void rejectsAnUnsupportedWidth() {
        CliRunner.Result r = CliRunner.run("bench", "decode", "--synthetic-bits", "5");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--synthetic-bits"), r.err());
    }

    @Test
    void reportsWhereSixteenBitWeightsAreKept(@TempDir Path dir) throws Exception {
        Path twin = dir.resolve("twin");
        assertEquals(0, CliRunner.run("synth", "--config", SynthCommandTest.config(dir).toString(), "--out", twin.toString(),
                "--layers", "1", "--dtype", "bf16", "--seed", "1").exitCode());
        for (String w : new String[]{"heap", "map"}) {
            CliRunner.Result r = CliRunner.run("bench", "decode", "--model", twin.toString(), "--weights", w,
                    "--prompt-tokens", "3", "--decode-tokens", "2", "--runs", "1", "--warmup", "0", "--warmup-seconds", "0", "--json");
            assertEquals(0, r.exitCode(), r.err());
            assertEquals(w, new ObjectMapper().readTree(r.out()).get("results").get(0).get("weights").asText());
        }
        // a float32 model has no 16-bit tensors to place
        CliRunner.Result r = CliRunner.run("bench", "decode", "--model", TestData.model("stories260K").toString(), "--weights", "heap",
                "--prompt-tokens", "3", "--decode-tokens", "2", "--runs", "1", "--warmup", "0", "--warmup-seconds", "0", "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals("none", new ObjectMapper().readTree(r.out()).get("results").get(0).get("weights").asText());
    }

    @Test
    void rejectsAnUnknownPlacement() {
        CliRunner.Result r = CliRunner.run("bench", "decode", "--model", TestData.model("stories260K").toString(), "--weights", "disk");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--weights") && r.err().contains("'disk'"), r.err());
    }

    @Test
    void needsAModel() {
        CliRunner.Result r = CliRunner.run("bench", "decode");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--model"), r.err());
    }
}
