package casp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp compress --method quip`, then `casp eval ppl` on the folder. */
class QuipCompressCommandTest {
    @TempDir
    Path tmp;

    @Test
    void compressThenEvaluate() throws Exception {
        Path out = tmp.resolve("quip");
        CliRunner.Result r = CliRunner.run("compress", "--model", CompressCommandTest.model(), "--calib", CompressCommandTest.text(),
                "--method", "quip", "--bits", "2", "--samples", "8", "--seq-len", "128", "--out", out.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        double eff = j.get("effective_bits").asDouble();
        assertTrue(eff > 2.0 && eff < 2.1, "E8P12 codes + signs + scale: " + eff);

        CliRunner.Result e = CliRunner.run("eval", "ppl", "--model", out.toString(), "--text", CompressCommandTest.text(),
                "--ctx", "256", "--reference", CompressCommandTest.model(), "--json");
        assertEquals(0, e.exitCode(), e.err());
        JsonNode p = new ObjectMapper().readTree(e.out());
        double ppl = p.get("ppl").asDouble(), kl = p.get("kl").asDouble();
        assertTrue(Double.isFinite(ppl) && ppl > 3.06 && ppl < 256, "ppl " + ppl);
        assertTrue(kl > 0.01 && Double.isFinite(kl), "kl " + kl);

        // 4 bits (E8P12 + E8P12 residual): twice the codes, a smaller loss
        Path out4 = tmp.resolve("quip4");
        CliRunner.Result r4 = CliRunner.run("compress", "--model", CompressCommandTest.model(), "--calib", CompressCommandTest.text(),
                "--method", "quip", "--bits", "4", "--samples", "8", "--seq-len", "128", "--out", out4.toString(), "--json");
        assertEquals(0, r4.exitCode(), r4.err());
        double eff4 = new ObjectMapper().readTree(r4.out()).get("effective_bits").asDouble();
        assertTrue(eff4 > 4.0 && eff4 < 4.15, "two stages of codes + signs + scales: " + eff4);
        CliRunner.Result e4 = CliRunner.run("eval", "ppl", "--model", out4.toString(), "--text", CompressCommandTest.text(),
                "--ctx", "256", "--reference", CompressCommandTest.model(), "--json");
        assertEquals(0, e4.exitCode(), e4.err());
        double kl4 = new ObjectMapper().readTree(e4.out()).get("kl").asDouble();
        assertTrue(kl4 < kl / 3, "4-bit KL " + kl4 + " vs 2-bit " + kl);
    }

    @Test
    void otherWidthsAreAUserError() {
        Path out = tmp.resolve("q8");
        CliRunner.Result r = CliRunner.run("compress", "--model", CompressCommandTest.model(), "--calib", CompressCommandTest.text(),
                "--method", "quip", "--bits", "8", "--out", out.toString());
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().startsWith("casp: error: ") && r.err().contains("--bits 2, 3 or 4"), r.err());
        assertFalse(Files.exists(out));
    }
}
