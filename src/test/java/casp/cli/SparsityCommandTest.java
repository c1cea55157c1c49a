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

class SparsityCommandTest {
    @TempDir
    Path tmp;

    @Test
    void textModelTableJsonAndChart() throws Exception {
        Path out = tmp.resolve("sp");
        CliRunner.Result r = CliRunner.run("sparsity", "--model", TestData.model("stories260K").toString(),
                "--data", TestData.file("models/stories260K/reference/eval.txt").toString(),
                "--samples", "2", "--seq-len", "48", "--rank-ratio", "0.25,0.5", "--json", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(5, j.get("layers").size());
        JsonNode l0 = j.get("layers").get(0);
        assertEquals(8, l0.get("heads").size());
        assertEquals(8, l0.get("low_rank").get(0).get("q_rank").asInt());
        assertEquals(16, l0.get("low_rank").get(1).get("q_rank").asInt());
        double sp = l0.get("sparsity").asDouble();
        assertTrue(sp > 0 && sp < 1);
        double m25 = j.get("all").get("mse").get(0).asDouble(), m50 = j.get("all").get("mse").get(1).asDouble();
        assertTrue(m25 > m50 && m50 > 0, "more rank, less error: " + m25 + " vs " + m50);
        assertEquals(2, j.get("visual_share_bins").get(0).get("inputs").asInt());
        byte[] png = Files.readAllBytes(out.resolve("sparsity.png"));
        assertTrue(png.length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G');
        assertTrue(Files.readString(out.resolve("sparsity.txt")).contains("By share of visual tokens"));
    }

    @Test
    void llavaInputsGroupedByVisualShare() throws Exception {
        Path dev = TestData.file("models/llava-stories/data/dev/dev.json");
        CliRunner.Result r = CliRunner.run("sparsity", "--model", TestData.model("llava-stories").toString(), "--data", dev.toString(),
                "--samples", "2", "--text-tokens", "4,200", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        // 64 image tokens: with 4 text tokens the share is above 0.8, with 200 below 0.4.
        JsonNode bins = j.get("visual_share_bins");
        assertEquals(2, bins.get(4).get("inputs").asInt(), bins.toString());
        assertEquals(2, bins.get(0).get("inputs").asInt() + bins.get(1).get("inputs").asInt(), bins.toString());
        double vm = j.get("all").get("visual_mass").asDouble();
        assertTrue(vm > 0 && vm < 1, "visual mass " + vm);

        r = CliRunner.run("sparsity", "--model", TestData.model("llava-stories").toString(), "--data", dev.toString(),
                "--samples", "2", "--fixed-length", "160", "--images-per-input", "0,2", "--json");
        assertEquals(0, r.exitCode(), r.err());
        bins = new ObjectMapper().readTree(r.out()).get("visual_share_bins");
        assertEquals(2, bins.get(0).get("inputs").asInt()); // share 0
        assertEquals(0.8, bins.get(4).get("mean_share").asDouble(), 1e-9); // 128 of 160
        assertEquals(0, bins.get(0).get("visual_mass").asDouble());

        r = CliRunner.run("sparsity", "--model", TestData.model("stories260K").toString(), "--data", dev.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("not a LLaVA model"), r.err());
    }

    @Test
    void userErrorsExitWithTwo() throws Exception {
        CliRunner.Result r = CliRunner.run("sparsity", "--model", TestData.model("stories260K").toString(),
                "--data", tmp.resolve("missing.txt").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("missing.txt"), r.err());
        r = CliRunner.run("sparsity", "--model", TestData.model("stories260K").toString(),
                "--data", TestData.file("models/stories260K/reference/eval.txt").toString(), "--rank-ratio", "1.5");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--rank-ratio"), r.err());
    }
}
