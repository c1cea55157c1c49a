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

/** `casp compress --method casp --backend quip`, then `casp eval ppl` and `casp generate` on the folder; user errors. */
class CaspQuipCommandTest {
    @TempDir
    Path tmp;

    List<String> base(Path out) {
        return new ArrayList<>(List.of("compress", "--model", CaspCompressCommandTest.model(), "--calib", CaspCompressCommandTest.text(),
                "--method", "casp", "--backend", "quip", "--bits", "2", "--samples", "4", "--seq-len", "64", "--out", out.toString()));
    }

    @Test
    void compressEvaluateGenerate() throws Exception {
        Path out = tmp.resolve("cq");
        List<String> a = base(out);
        a.add("--json");
        CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("quip", j.get("backend").asText());
        double eff = j.get("effective_bits").asDouble();
        assertTrue(eff <= 2.0 && eff > 1.9, "effective bits per original weight " + eff);
        assertEquals(2.0, j.get("casp_budget").get("budget_effective_bits").asDouble(), 1e-12);
        assertTrue(j.get("casp_budget").get("within_budget").asBoolean());

        CaspCompressCommandTest.assertEvaluatesAndGenerates(out);

        // The text summary names the budget rule.
        Path out2 = tmp.resolve("text");
        CliRunner.Result t = CliRunner.run(base(out2).toArray(new String[0]));
        assertEquals(0, t.exitCode(), t.err());
        assertTrue(t.out().contains("budget (2 bits x weights)"), t.out());
    }

    @Test
    void badBackendFlagsExitWith2AndLeaveNothing() {
        // (--backend aqlm is a backend now: CaspAqlmCommandTest)
        String[][] bad = {{"--backend", "quip2"}, {"--group-size", "32"}, {"--sym"}, {"--bits", "4"}};
        String[] flag = {"--backend", "--group-size", "--sym", "--bits"};
        for (int i = 0; i < bad.length; i++) {
            Path out = tmp.resolve("bad" + i);
            List<String> a = base(out);
            if (bad[i][0].equals("--bits")) a.set(a.indexOf("--bits") + 1, bad[i][1]);
            else if (bad[i][0].equals("--backend")) a.set(a.indexOf("--backend") + 1, bad[i][1]);
            else a.addAll(List.of(bad[i]));
            CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
            assertEquals(2, r.exitCode(), String.join(" ", bad[i]) + ": " + r.err());
            assertTrue(r.err().startsWith("casp: error: ") && r.err().contains(flag[i]), r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
            assertFalse(Files.exists(out));
        }
    }
}
