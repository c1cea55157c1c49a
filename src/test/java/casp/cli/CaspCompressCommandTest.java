package casp.cli;

import casp.TestData;
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

/** `casp compress --method casp`: flags, JSON output, user errors. */
class CaspCompressCommandTest {
    @TempDir
    Path tmp;

    static String model() { return TestData.model("stories260K").toString(); }

    static String text() { return TestData.file("models/stories260K/reference/eval.txt").toString(); }

    /**
     * A compressed stories260K folder runs: `eval ppl --reference` gives a finite perplexity worse
     * than float32's 3.0552 but not random (< 256) and a positive KL, and `generate` emits 8 tokens.
     */
    static void assertEvaluatesAndGenerates(Path out) throws Exception {
        CliRunner.Result e = CliRunner.run("eval", "ppl", "--model", out.toString(), "--text", text(),
                "--ctx", "256", "--reference", model(), "--json");
        assertEquals(0, e.exitCode(), e.err());
        JsonNode p = new ObjectMapper().readTree(e.out());
        double ppl = p.get("ppl").asDouble(), kl = p.get("kl").asDouble();
        assertTrue(Double.isFinite(ppl) && ppl > 3.06 && ppl < 256, "ppl " + ppl);
        assertTrue(kl > 0.01 && Double.isFinite(kl), "kl " + kl);
        CliRunner.Result g = CliRunner.run("generate", "--model", out.toString(), "--prompt", "Once upon a time", "--max-tokens", "8", "--json");
        assertEquals(0, g.exitCode(), g.err());
        assertEquals(8, new ObjectMapper().readTree(g.out()).get("ids").size(), g.out());
    }

    List<String> base(Path out) {
        return new ArrayList<>(List.of("compress", "--model", model(), "--calib", text(), "--method", "casp", "--bits", "2",
                "--samples", "4", "--seq-len", "64", "--out", out.toString()));
    }

    @Test
    void caspJsonReportsTheBudgetAndTheTextSummary() throws Exception {
        Path out = tmp.resolve("c");
        List<String> a = base(out);
        a.addAll(List.of("--allocation", "closed-form", "--allocation-unit", "layer", "--rank-rule", "budget", "--a-bits", "4", "--rotate", "--json"));
        CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        JsonNode b = j.get("casp_budget");
        assertTrue(b.get("within_budget").asBoolean());
        assertTrue(j.get("effective_bits").asDouble() <= b.get("budget_effective_bits").asDouble());
        JsonNode report = new ObjectMapper().readTree(out.resolve("casp-report.json").toFile()).get("casp");
        assertEquals("closed-form", report.get("options").get("allocation").asText());
        assertEquals("layer", report.get("options").get("allocation_unit").asText());
        assertEquals(4, report.get("options").get("a_bits").asInt());
        assertEquals(5, report.get("units").size());
        int total = 0;
        for (JsonNode l : report.get("low_rank")) total += l.get("q_rank").asInt();
        assertEquals(40, total, "the budget rule keeps the ratio rule's total rank");
        byte[] png = java.nio.file.Files.readAllBytes(out.resolve(casp.report.Charts.BIT_ALLOCATION));
        assertEquals('P', png[1], "the bit-allocation chart is a PNG in the output folder");

        Path out2 = tmp.resolve("t");
        r = CliRunner.run(base(out2).toArray(new String[0]));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("casp: stored") && r.out().contains("budget (plain gptq 2-bit)"), r.out());
    }

    @Test
    void badCaspFlagsExitWith2AndLeaveNothing() {
        String[][] bad = {{"--allocation", "greedy"}, {"--rank-rule", "magic"}, {"--allocation-unit", "block"}, {"--factor-bits", "5"},
                {"--factor-bits", "0"}, {"--rank-ratio", "0"}, {"--backend", "aqlm"}, {"--bits", "4"}};
        String[] flag = {"--allocation", "--rank-rule", "--allocation-unit", "--factor-bits", "--factor-bits", "--rank-ratio", "--backend", "--bits"};
        for (int i = 0; i < bad.length; i++) {
            Path out = tmp.resolve("bad" + i);
            List<String> a = base(out);
            if (bad[i][0].equals("--bits")) a.set(a.indexOf("--bits") + 1, bad[i][1]);
            else a.addAll(List.of(bad[i]));
            CliRunner.Result r = CliRunner.run(a.toArray(new String[0]));
            assertEquals(2, r.exitCode(), String.join(" ", bad[i]) + ": " + r.err());
            assertTrue(r.err().contains(flag[i]), r.err());
            assertFalse(Files.exists(out));
        }
    }
}
