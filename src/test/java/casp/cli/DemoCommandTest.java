package casp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp demo` on the repository's testdata/tiny-llava (what a fresh clone runs), with small settings. */
class DemoCommandTest {
    @TempDir
    Path tmp;

    @Test
    void demoComparesGptqAndCaspAtTheSameBudget() throws Exception {
        Path keep = tmp.resolve("keep");
        CliRunner.Result r = CliRunner.run("demo", "--limit", "8", "--samples", "4", "--keep", keep.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode rows = new ObjectMapper().readTree(r.out()).get("rows");
        assertEquals(3, rows.size());
        assertEquals("float32", rows.get(0).get("name").asText());
        double gptq = rows.get(1).get("effective_bits").asDouble(), casp = rows.get(2).get("effective_bits").asDouble();
        assertTrue(gptq > 2 && gptq < 2.5, "GPTQ 2-bit effective bits " + gptq);
        assertTrue(casp <= gptq, "equal budget: CASP " + casp + " vs GPTQ " + gptq);
        for (int i = 1; i < 3; i++) {
            JsonNode row = rows.get(i);
            assertTrue(row.get("kl").asDouble() > 0, row.toString());
            assertTrue(row.get("answer_ppl").asDouble() >= 1, row.toString());
            assertTrue(row.get("model_bytes").asLong() < rows.get(0).get("model_bytes").asLong(), "compressed is smaller");
        }
        assertTrue(Files.isRegularFile(keep.resolve("casp-gptq2").resolve("casp-bit-allocation.png")));
        assertTrue(r.err().contains("first 8 of 500"), r.err());
    }

    @Test
    void missingModelIsAUserError() {
        CliRunner.Result r = CliRunner.run("demo", "--model", tmp.resolve("nope").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--model"), r.err());
    }
}
