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

/** `casp compress --method aqlm`, then `casp eval ppl` on the folder; bad AQLM flags exit 2. */
class AqlmCommandTest {
    @TempDir
    Path tmp;

    @Test
    void compressThenEvaluate() throws Exception {
        Path out = tmp.resolve("aqlm");
        CliRunner.Result r = CliRunner.run("compress", "--model", CompressCommandTest.model(), "--calib", CompressCommandTest.text(),
                "--method", "aqlm", "--bits", "2", "--codebook-bits", "4", "--aqlm-iters", "1", "--samples", "4", "--seq-len", "64",
                "--out", out.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        // 4x4 on stories260K: 2 bits of codes, 4 x 16 x 8 fp16 codebook values per linear (2 bits per weight on a
        // 64 x 64 layer) and an fp16 scale per row.
        double eff = j.get("effective_bits").asDouble();
        assertTrue(eff > 3 && eff < 4, "effective bits " + eff);
        JsonNode opts = new ObjectMapper().readTree(out.resolve("casp-report.json").toFile()).get("options").get("aqlm");
        assertEquals(4, opts.get("num_codebooks").asInt());
        assertEquals(4, opts.get("codebook_bits").asInt());

        CliRunner.Result e = CliRunner.run("eval", "ppl", "--model", out.toString(), "--text", CompressCommandTest.text(), "--ctx", "256",
                "--reference", CompressCommandTest.model(), "--json");
        assertEquals(0, e.exitCode(), e.err());
        JsonNode p = new ObjectMapper().readTree(e.out());
        assertTrue(Double.isFinite(p.get("ppl").asDouble()) && p.get("ppl").asDouble() > 3.0, "ppl " + p.get("ppl"));
        assertTrue(p.get("kl").asDouble() > 0, "KL " + p.get("kl"));
    }

    @Test
    void badAqlmFlagsExitWith2() {
        String[][] cases = {
                {"--bits", "2", "--codebook-bits", "16"},
                {"--bits", "2", "--codebooks", "3"},
                {"--bits", "3", "--codebook-bits", "5"},
                {"--bits", "2", "--beam", "0"},
                {"--bits", "2", "--group-size", "64"},
        };
        String[] flag = {"--codebook-bits", "--codebooks", "--codebook-bits", "--beam", "--group-size"};
        for (int i = 0; i < cases.length; i++) {
            Path out = tmp.resolve("bad" + i);
            String[] base = {"compress", "--model", CompressCommandTest.model(), "--calib", CompressCommandTest.text(),
                    "--method", "aqlm", "--out", out.toString()};
            String[] args = new String[base.length + cases[i].length];
            System.arraycopy(base, 0, args, 0, base.length);
            System.arraycopy(cases[i], 0, args, base.length, cases[i].length);
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(2, r.exitCode(), String.join(" ", cases[i]) + ": " + r.err());
            assertTrue(r.err().contains(flag[i]), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
            assertFalse(Files.exists(out));
        }
    }
}
