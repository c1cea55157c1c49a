package casp.cli;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp compress`, then running the compressed folder (eval ppl --reference, generate). */
class CompressCommandTest {
    @TempDir
    Path tmp;

    static String model() {
        return TestData.model("stories260K").toString();
    }

    static String text() {
        return TestData.file("models/stories260K/reference/eval.txt").toString();
    }

    @Test
    void compressJsonThenEvaluateAndGenerateFromTheFolder() throws Exception {
        Path out = tmp.resolve("q4");
        CliRunner.Result r = CliRunner.run("compress", "--model", model(), "--calib", text(), "--method", "gptq", "--bits", "4",
                "--samples", "8", "--seq-len", "128", "--out", out.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(out.toAbsolutePath().normalize().toString(), j.get("out").asText());
        double eff = j.get("effective_bits").asDouble();
        assertTrue(eff > 4.2 && eff < 4.35, "4 bits + per-group scale and zero: " + eff);
        assertTrue(j.get("seconds").asDouble() > 0);
        assertTrue(Files.isRegularFile(out.resolve("casp-report.json")));

        CliRunner.Result e = CliRunner.run("eval", "ppl", "--model", out.toString(), "--text", text(), "--ctx", "256",
                "--reference", model(), "--json");
        assertEquals(0, e.exitCode(), e.err());
        JsonNode p = new ObjectMapper().readTree(e.out());
        assertTrue(p.get("kl").asDouble() > 1e-4 && p.get("kl").asDouble() < 0.5, "KL of 4-bit GPTQ: " + p.get("kl"));
        assertTrue(p.get("ppl").asDouble() > 3.055 && p.get("ppl").asDouble() < 3.6, "ppl " + p.get("ppl"));

        CliRunner.Result g = CliRunner.run("generate", "--model", out.toString(), "--prompt", "Once upon a time",
                "--max-tokens", "20", "--json");
        assertEquals(0, g.exitCode(), g.err());
        assertTrue(new ObjectMapper().readTree(g.out()).get("text").asText().length() > 10);
    }

    @Test
    void maxBlocksStopsWithACheckpointAndResumeFinishes() throws Exception {
        Path out = tmp.resolve("split");
        List<String> args = List.of("compress", "--model", model(), "--calib", text(), "--method", "gptq", "--bits", "2",
                "--samples", "4", "--seq-len", "64", "--activation-dtype", "bf16", "--max-memory", "1k", "--out", out.toString(), "--json");
        List<String> first = new java.util.ArrayList<>(args);
        first.addAll(List.of("--max-blocks", "2"));
        CliRunner.Result a = CliRunner.run(first.toArray(new String[0]));
        assertEquals(0, a.exitCode(), a.err());
        JsonNode j = new ObjectMapper().readTree(a.out());
        assertFalse(j.get("complete").asBoolean());
        assertTrue(j.get("activation_spilled_bytes").asLong() > 0, "1k of memory: the activations spill");
        assertEquals(2, j.get("cost").get("blocks").size());
        assertTrue(j.get("cost").get("projected_total_seconds").asDouble() > 0);
        assertTrue(a.err().contains("block 2/5"), a.err());
        assertFalse(Files.exists(out));
        List<String> rest = new java.util.ArrayList<>(args);
        rest.add("--resume");
        CliRunner.Result b = CliRunner.run(rest.toArray(new String[0]));
        assertEquals(0, b.exitCode(), b.err());
        JsonNode k = new ObjectMapper().readTree(b.out());
        assertTrue(k.get("complete").asBoolean());
        assertEquals(2, k.get("resumed_from_block").asInt());
        assertTrue(Files.isRegularFile(out.resolve("casp-report.json")));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList(), "no checkpoint or scratch file left");
        }
    }

    @Test
    void userErrorsExitWith2AndLeaveNothing() throws Exception {
        Path out = tmp.resolve("q");
        Files.createDirectories(out);
        CliRunner.Result r = CliRunner.run("compress", "--model", model(), "--calib", text(), "--method", "rtn", "--bits", "4",
                "--out", out.toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("already exists") && r.err().contains("--force"), r.err());

        Path out2 = tmp.resolve("q2");
        for (List<String> bad : List.of(
                List.of("--method", "awq", "--bits", "4"),
                List.of("--method", "gptq", "--bits", "5"),
                List.of("--method", "gptq", "--bits", "4", "--calib", tmp.resolve("missing.txt").toString()),
                List.of("--method", "gptq", "--bits", "4", "--images", tmp.toString()),
                List.of("--method", "gptq", "--bits", "4", "--true-sequential", "maybe"),
                List.of("--method", "gptq", "--bits", "4", "--group-size", "0"),
                List.of("--method", "gptq", "--bits", "4", "--seq-len", "4096"),
                List.of("--method", "gptq", "--bits", "4", "--activation-dtype", "f16"),
                List.of("--method", "gptq", "--bits", "4", "--max-memory", "12x"),
                List.of("--method", "gptq", "--bits", "4", "--max-blocks", "0"),
                List.of("--method", "gptq", "--bits", "4", "--max-blocks", "1", "--checkpoint", "false"),
                List.of("--method", "gptq", "--bits", "4", "--max-measured-layers", "1"),
                List.of("--method", "casp", "--bits", "2", "--max-measured-layers", "0"),
                List.of("--method", "casp", "--bits", "2", "--max-measured-layers", "1", "--checkpoint", "false"),
                List.of("--method", "casp", "--bits", "2", "--rank-rule", "threshold", "--max-measured-layers", "1"))) {
            List<String> args = new java.util.ArrayList<>(List.of("compress", "--model", model(), "--out", out2.toString()));
            if (!bad.contains("--calib")) args.addAll(List.of("--calib", text()));
            args.addAll(bad);
            CliRunner.Result b = CliRunner.run(args.toArray(new String[0]));
            assertEquals(2, b.exitCode(), bad + ": " + b.err());
            assertTrue(b.err().startsWith("casp: error: "), b.err());
            assertFalse(b.err().contains("\tat "), "no stack trace: " + b.err());
        }
        CliRunner.Result m = CliRunner.run("compress", "--model", tmp.resolve("nope").toString(), "--calib", text(),
                "--method", "rtn", "--bits", "4", "--out", out2.toString());
        assertEquals(2, m.exitCode(), m.err());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList(), "no output, temporary folder or checkpoint left");
        }
    }
}
