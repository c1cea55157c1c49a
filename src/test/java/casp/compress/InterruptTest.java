package casp.compress;

import casp.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real `casp compress` process stopped by SIGTERM (what Ctrl-C's SIGINT does to a JVM: shutdown
 * hooks run) leaves no output folder and no temporary folder, only the checkpoint, from which
 * the run resumes.
 */
class InterruptTest {

    @Test
    void stoppedProcessLeavesOnlyTheCheckpoint(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("q");
        String java = ProcessHandle.current().info().command().orElse("java");
        ProcessBuilder pb = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-Dcasp.quiet=true",
                "-cp", System.getProperty("java.class.path"), "casp.cli.Main", "compress",
                "--model", TestData.model("stories260K").toString(),
                "--calib", TestData.file("models/stories260K/reference/eval.txt").toString(),
                "--method", "gptq", "--bits", "2", "--samples", "48", "--seq-len", "512", "--out", out.toString());
        pb.redirectErrorStream(true).redirectOutput(tmp.resolve("log.txt").toFile());
        Process p = pb.start();
        Path state = Checkpoint.dirFor(out).resolve(Checkpoint.STATE);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        // Wait for the first completed block (a checkpoint naming its activations).
        while (p.isAlive() && System.nanoTime() < deadline
                && !(Files.exists(state) && Files.readString(state).contains("activations-"))) Thread.sleep(20);
        assertTrue(p.isAlive(), "the run should still be going: " + Files.readString(tmp.resolve("log.txt")));
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertFalse(Files.exists(out), "no output folder");
        try (Stream<Path> s = Files.list(tmp)) {
            List<String> names = s.map(f -> f.getFileName().toString()).sorted().toList();
            assertEquals(List.of("log.txt", "q.partial"), names, "only the checkpoint (and our log) remain");
        }
        CompressionOptions o = new CompressionOptions("gptq", 2, CompressionOptions.AUTO_GROUP, false, false, true, 48, 512, 0, 0.01);
        CompressionRun.Outcome r = CompressionRun.run(new CompressionRun.Request(TestData.model("stories260K"),
                TestData.file("models/stories260K/reference/eval.txt"), null, o, out, false, true, true), null,
                new PrintStream(new ByteArrayOutputStream()));
        assertTrue(r.resumedFromBlock() >= 1, "resumed after " + r.resumedFromBlock() + " blocks");
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        assertFalse(Files.exists(Checkpoint.dirFor(out)));
    }
}
