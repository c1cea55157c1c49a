package casp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp compress --method casp --backend aqlm`, then `casp eval ppl` and `casp generate` on the folder; user errors. */
class CaspAqlmCommandTest {
    @TempDir
    Path tmp;

    /** 8x2 codebooks, one quick round; the plain-AQLM budget (the target itself does not fit stories260K). */
    List<String> base(Path out) {
        return new ArrayList<>(List.of("compress", "--model", CaspCompressCommandTest.model(), "--calib", CaspCompressCommandTest.text(),
                "--method", "casp", "--backend", "aqlm", "--codebook-bits", "2", "--budget", "plain", "--aqlm-iters", "1",
                "--kmeans-iters", "2", "--beam", "2", "--allocation", "paper", "--bits", "2", "--samples", "4", "--seq-len", "64",
                "--out", out.toString()));
    }

    @Test
    void compressEvaluateGenerate() throws Exception {
        Path out = tmp.resolve("ca");
        List<String> a = base(out);
        a.add("--json");
        CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("aqlm", j.get("backend").asText());
        double eff = j.get("effective_bits").asDouble(), budget = j.get("casp_budget").get("budget_effective_bits").asDouble();
        assertEquals(647040.0 / 226560, budget, 1e-12, "plain AQLM 8x2 on stories260K");
        assertTrue(eff <= budget && eff > 2.5, "effective bits per original weight " + eff);
        assertTrue(j.get("casp_budget").get("within_budget").asBoolean());

        CaspCompressCommandTest.assertEvaluatesAndGenerates(out);
    }

    /** The default budget (the target) cannot hold stories260K's codebooks: exit 2 before any work, naming the cheapest plan. */
    @Test
    void targetBudgetIsRefusedOnTinyLayers() {
        Path out = tmp.resolve("t");
        List<String> a = base(out);
        int i = a.indexOf("--budget");
        a.remove(i + 1);
        a.remove(i);
        a.addAll(List.of("--rank-ratio", "0.25")); // the least bits quoted below are those of rank ratio 0.25
        CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("--backend aqlm with 2-bit codebooks") && r.err().contains("2.5153 bits per weight")
                && r.err().contains("--budget plain"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(Files.exists(out));
        assertFalse(Files.exists(tmp.resolve("t.partial")), "no checkpoint left behind");
    }

    @Test
    void badFlagsExitWith2AndLeaveNothing() {
        String[][] bad = {{"--codebooks", "8"}, {"--codebook-bits", "1"}, {"--budget", "half"}, {"--group-size", "32"}, {"--codebook-bits", "13"},
                {"--bits", "4"}};
        String[] flag = {"--codebooks", "--codebook-bits", "--budget", "--group-size", "--codebook-bits", "--bits"};
        for (int i = 0; i < bad.length; i++) {
            Path out = tmp.resolve("bad" + i);
            List<String> a = base(out);
            int at = a.indexOf(bad[i][0]);
            if (at >= 0) a.set(at + 1, bad[i][1]);
            else a.addAll(List.of(bad[i]));
            CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
            assertEquals(2, r.exitCode(), String.join(" ", bad[i]) + ": " + r.err());
            assertTrue(r.err().startsWith("casp: error: ") && r.err().contains(flag[i]), r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
            assertFalse(Files.exists(out));
        }
        // --budget is the aqlm and quip backends' choice only
        CliRunner.Result r = CliRunner.run("compress", "--model", CaspCompressCommandTest.model(), "--calib", CaspCompressCommandTest.text(),
                "--method", "casp", "--backend", "gptq", "--budget", "plain", "--bits", "2", "--samples", "4", "--seq-len", "64",
                "--out", tmp.resolve("gptq").toString());
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("--budget applies to --backend aqlm and quip only"), r.err());
        // --share-codebooks: the aqlm backend only, and not resumable
        r = CliRunner.run("compress", "--model", CaspCompressCommandTest.model(), "--calib", CaspCompressCommandTest.text(),
                "--method", "casp", "--backend", "gptq", "--share-codebooks", "--bits", "2", "--samples", "4", "--seq-len", "64",
                "--out", tmp.resolve("gptq").toString());
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("--share-codebooks applies to --backend aqlm only"), r.err());
        List<String> a = base(tmp.resolve("resume"));
        a.addAll(List.of("--share-codebooks", "--resume"));
        r = CliRunner.run(a.toArray(new String[0]));
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("--share-codebooks runs cannot be resumed"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(Files.exists(tmp.resolve("resume")));
    }
}
