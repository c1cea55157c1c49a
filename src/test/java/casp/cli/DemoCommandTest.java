package casp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp demo` on the repository's testdata/llava-stories (what a fresh clone runs), with small settings. */
class DemoCommandTest {
    @TempDir
    Path tmp;

    @Test
    void demoComparesTheFourCompressionsAtTheTwoBitTarget() throws Exception {
        Path keep = tmp.resolve("keep");
        CliRunner.Result r = CliRunner.run("demo", "--limit", "4", "--samples", "4", "--keep", keep.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode rows = new ObjectMapper().readTree(r.out()).get("rows");
        assertEquals(5, rows.size());
        String[] names = {"float32", "GPTQ 2-bit", "CASP-GPTQ 2-bit", "QuIP# 2-bit", "CASP-QuIP# 2-bit"};
        for (int i = 0; i < names.length; i++) assertEquals(names[i], rows.get(i).get("name").asText());
        double gptq = rows.get(1).get("effective_bits").asDouble(), caspGptq = rows.get(2).get("effective_bits").asDouble();
        double quip = rows.get(3).get("effective_bits").asDouble(), caspQuip = rows.get(4).get("effective_bits").asDouble();
        assertTrue(gptq > 2 && gptq < 2.5, "GPTQ 2-bit effective bits " + gptq);
        assertTrue(caspGptq <= gptq, "equal budget: CASP-GPTQ " + caspGptq + " vs GPTQ " + gptq);
        assertTrue(quip > 2 && quip < 2.2, "QuIP# 2-bit effective bits " + quip);
        assertTrue(caspQuip <= 2, "CASP-QuIP# is held to the target itself: " + caspQuip);
        for (int i = 1; i < 5; i++) {
            JsonNode row = rows.get(i);
            assertTrue(row.get("kl").asDouble() > 0, row.toString());
            assertTrue(row.get("answer_ppl").asDouble() >= 1, row.toString());
            assertTrue(row.get("model_bytes").asLong() < rows.get(0).get("model_bytes").asLong(), "compressed is smaller");
        }
        assertTrue(Files.isRegularFile(keep.resolve("casp-gptq2").resolve("casp-bit-allocation.png")));
        assertTrue(Files.isRegularFile(keep.resolve("casp-quip2").resolve("casp-bit-allocation.png")));
        assertTrue(r.err().contains("first 4 of 300"), r.err());
    }

    @Test
    void unknownMethodIsAUserError() {
        CliRunner.Result r = CliRunner.run("demo", "--methods", "gptq,awq");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--methods") && r.err().contains("awq"), r.err());
    }

    @Test
    void missingModelIsAUserError() {
        CliRunner.Result r = CliRunner.run("demo", "--model", tmp.resolve("nope").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--model"), r.err());
    }
}
