package casp.compress;

import casp.TestData;
import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** End-to-end runs: checkpoint and resume, refusing to overwrite, the report. */
class CompressionRunTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());

    private static CompressionRun.Request request(Path out, boolean force, boolean resume) {
        CompressionOptions o = new CompressionOptions("gptq", 2, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, o, out, force, resume, true);
    }

    /** Thrown by the test listener to simulate a crash after a block was checkpointed. */
    private static final class Crash extends RuntimeException {}

    private static void assertSameTensors(Path a, Path b) {
        SafeTensorsFile fa = SafeTensorsFile.open(a.resolve("model.safetensors")), fb = SafeTensorsFile.open(b.resolve("model.safetensors"));
        assertEquals(fa.tensors().keySet(), fb.tensors().keySet());
        for (String name : fa.tensors().keySet()) assertArrayEquals(fa.readBytes(name), fb.readBytes(name), name);
    }

    @Test
    void resumeAfterACrashGivesTheSameModel(@TempDir Path tmp) throws Exception {
        // A first run warms the JIT up: the forward pass's exp differs in the last bit between
        // interpreted and compiled code, and both runs compared below should see compiled code.
        CompressionRun.run(request(tmp.resolve("warm"), false, false), null, LOG);

        Path fresh = tmp.resolve("fresh");
        CompressionRun.Outcome a = CompressionRun.run(request(fresh, false, false), null, LOG);
        assertFalse(Files.exists(Checkpoint.dirFor(fresh)), "checkpoint removed after success");

        Path out = tmp.resolve("resumed");
        SequentialCompressor.Listener crashAfter2 = new SequentialCompressor.Listener() {
            @Override public void blockDone(SequentialCompressor.BlockResult b, Calibration act) {
                if (b.layer() == 2) throw new Crash();
            }
        };
        assertThrows(Crash.class, () -> CompressionRun.run(request(out, false, false), crashAfter2, LOG));
        assertFalse(Files.exists(out), "no output after a crash");
        Path cp = Checkpoint.dirFor(out);
        assertTrue(Checkpoint.exists(cp));
        JsonNode state = new ObjectMapper().readTree(cp.resolve("state.json").toFile());
        assertEquals(3, state.get("blocks").size());
        assertEquals("activations-3.safetensors", state.get("activations").asText());

        // Without --resume (or --force) the checkpoint is not silently thrown away.
        BadInputException e = assertThrows(BadInputException.class, () -> CompressionRun.run(request(out, false, false), null, LOG));
        assertTrue(e.getMessage().contains("--resume"), e.getMessage());
        // Other arguments do not resume it.
        CompressionOptions other = new CompressionOptions("gptq", 3, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);
        CompressionRun.Request otherReq = new CompressionRun.Request(TestData.model("stories260K"),
                TestData.file("models/stories260K/reference/eval.txt"), null, other, out, false, true, true);
        assertThrows(BadInputException.class, () -> CompressionRun.run(otherReq, null, LOG));

        int[] started = {-1};
        CompressionRun.Outcome b = CompressionRun.run(request(out, false, true), new SequentialCompressor.Listener() {
            @Override public void blockStarted(int layer, int layers) { if (started[0] < 0) started[0] = layer; }
        }, LOG);
        assertEquals(3, started[0], "resumed at the first block not done");
        assertEquals(3, b.resumedFromBlock());
        assertFalse(Files.exists(cp), "checkpoint removed after success");
        assertSameTensors(fresh, out);
        assertEquals(a.effectiveBits(), b.effectiveBits());
        JsonNode ra = new ObjectMapper().readTree(fresh.resolve("casp-report.json").toFile());
        JsonNode rb = new ObjectMapper().readTree(out.resolve("casp-report.json").toFile());
        assertEquals(5, rb.get("blocks").size());
        for (int i = 0; i < 5; i++) {
            for (int j = 0; j < 7; j++) {
                assertEquals(ra.get("blocks").get(i).get("linears").get(j).get("proxy_error").asDouble(),
                        rb.get("blocks").get(i).get("linears").get(j).get("proxy_error").asDouble(), "block " + i + " linear " + j);
            }
        }
        assertEquals(3, rb.get("totals").get("resumed_from_block").asInt());
    }

    @Test
    void reportHasTotalsAndAnExistingOutputIsRefusedBeforeWork(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("q");
        CompressionRun.Outcome o = CompressionRun.run(request(out, false, false), null, LOG);
        JsonNode r = new ObjectMapper().readTree(out.resolve("casp-report.json").toFile());
        JsonNode t = r.get("totals");
        long weights = 5L * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172);
        assertEquals(weights, t.get("linear_weights").asLong());
        // 2 bits + per group (fp16 scale + 2-bit zero): rows of 64 are one group, rows of 172 two groups of 86.
        double want = (5.0 * ((2 * 64 * 64 + 2 * 32 * 64 + 2 * 64 * 172) * (2 + 18.0 / 64) + 64 * 172 * (2 + 2 * 18.0 / 172))) / weights;
        assertEquals(want, t.get("effective_bits").asDouble(), 1e-12);
        assertEquals(want, o.effectiveBits(), 1e-12);
        assertEquals(6L * 96 * 64 * 4, t.get("activation_bytes").asLong());
        assertTrue(t.get("peak_heap_bytes").asLong() > 0);
        assertTrue(t.get("wall_seconds").asDouble() > 0);
        JsonNode first = r.get("blocks").get(0).get("linears").get(0);
        assertEquals("self_attn.q_proj", first.get("linear").asText());
        assertTrue(first.get("proxy_error").asDouble() > 0 && first.get("proxy_error").asDouble() < 1);

        long before = Files.getLastModifiedTime(out.resolve("model.safetensors")).toMillis();
        BadInputException e = assertThrows(BadInputException.class, () -> CompressionRun.run(request(out, false, false), null, LOG));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        // Refused before reading anything: a request whose model and calibration file do not exist gets the same answer.
        CompressionRun.Request missing = new CompressionRun.Request(tmp.resolve("no-model"), tmp.resolve("no-calib.txt"), null,
                request(out, false, false).options(), out, false, false, true);
        e = assertThrows(BadInputException.class, () -> CompressionRun.run(missing, null, LOG));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertEquals(before, Files.getLastModifiedTime(out.resolve("model.safetensors")).toMillis());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList());
        }
    }
}
