package casp.compress;

import casp.TestData;
import casp.quant.aqlm.Aqlm;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The compressed folders of every method and backend, file by file, against recorded SHA-256
 * hashes (src/test/resources/casp/compress/folder-hashes.txt): a change to how any format is
 * quantized, stored or described shows here. Small settings keep each run under a few seconds.
 *
 * <p>JSON files are hashed after removing what differs between two identical runs (wall times,
 * memory peaks) and after replacing the shared-data and output paths by placeholders.
 *
 * <p>To record new hashes after an intended change: run this test with {@code -Dcasp.recordHashes=true};
 * it writes the file into src/test/resources and passes.
 */
class FolderHashesTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path RECORD = Path.of("src/test/resources/casp/compress/folder-hashes.txt");

    private static final Aqlm.Options AQ = Aqlm.Options.defaults(2).withCodebooks(8, 2).withIterations(1).withKmeansIterations(2)
            .withBeamWidth(2);

    private static CompressionOptions plain(String method, int bits) {
        return new CompressionOptions(method, bits, CompressionOptions.AUTO_GROUP, false, false, true, 4, 64, 5, 0.01,
                method.equals("aqlm") ? AQ : null);
    }

    private static CaspPlan.Options casp(String backend) {
        return new CaspPlan.Options(backend, 2, CaspPlan.RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.MEASURED, true, 3, 0,
                false, false, true, backend.equals("aqlm") ? AQ : null, backend.equals("aqlm"));
    }

    /** Runs in a fixed order: the first run also warms the JIT, so every later run sees compiled code. */
    private static Map<String, CompressionRun.Request> requests(Path tmp) {
        Path model = TestData.model("stories260K"), text = TestData.file("models/stories260K/reference/eval.txt");
        Map<String, CompressionRun.Request> r = new LinkedHashMap<>();
        r.put("rtn-3", new CompressionRun.Request(model, text, null, plain("rtn", 3), tmp.resolve("rtn-3"), false, false, false));
        r.put("gptq-2", new CompressionRun.Request(model, text, null, plain("gptq", 2), tmp.resolve("gptq-2"), false, false, false));
        r.put("quip-2", new CompressionRun.Request(model, text, null, plain("quip", 2), tmp.resolve("quip-2"), false, false, false));
        r.put("aqlm-2", new CompressionRun.Request(model, text, null, plain("aqlm", 2), tmp.resolve("aqlm-2"), false, false, false));
        for (String b : List.of("gptq", "quip", "aqlm")) {
            r.put("casp-" + b, new CompressionRun.Request(model, text, null, plain(b, 2), tmp.resolve("casp-" + b), false, false, false,
                    casp(b), false));
        }
        Path llava = TestData.model("tiny-llava"), conv = TestData.file("models/tiny-llava/data/calib/calib.json");
        r.put("llava-gptq-2", new CompressionRun.Request(llava, conv, null,
                new CompressionOptions("gptq", 2, CompressionOptions.AUTO_GROUP, false, false, true, 3, 48, 5, 0.01),
                tmp.resolve("llava-gptq-2"), false, false, false));
        return r;
    }

    @Test
    void everyMethodWritesTheRecordedFolder(@TempDir Path tmp) throws Exception {
        // Warm-up: the forward pass's exp differs in the last bit between interpreted and compiled code.
        CompressionRun.run(new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, plain("gptq", 2), tmp.resolve("warm"), false, false, false), null, LOG);
        List<String> lines = new ArrayList<>();
        for (Map.Entry<String, CompressionRun.Request> e : requests(tmp).entrySet()) {
            CompressionRun.run(e.getValue(), null, LOG);
            Path out = e.getValue().out();
            try (Stream<Path> files = Files.list(out)) {
                for (Path f : files.sorted().toList()) {
                    String name = f.getFileName().toString();
                    lines.add(e.getKey() + " " + name + " " + hash(f, out));
                }
            }
        }
        String got = String.join("\n", lines) + "\n";
        if (Boolean.getBoolean("casp.recordHashes")) {
            Files.createDirectories(RECORD.getParent());
            Files.writeString(RECORD, got);
            return;
        }
        assertEquals(Files.readString(RECORD), got);
    }

    private static String hash(Path f, Path out) throws IOException {
        byte[] bytes = Files.readAllBytes(f);
        if (f.getFileName().toString().endsWith(".json")) {
            JsonNode n = JSON.readTree(bytes);
            dropVolatile(n);
            String text = JSON.writeValueAsString(n)
                    .replace(TestData.sharedDir().toString(), "$SHARED")
                    .replace(out.toString(), "$OUT");
            bytes = text.getBytes(StandardCharsets.UTF_8);
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Removes timings, memory peaks, the cost section (timings and projections) and the memory
     * budget (it depends on the machine): they differ between identical runs. At any depth.
     */
    private static void dropVolatile(JsonNode n) {
        if (n.isObject()) {
            ObjectNode o = (ObjectNode) n;
            for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) {
                String f = it.next();
                if (f.contains("seconds") || f.contains("heap") || f.contains("rss") || f.equals("cost")
                        || f.equals("memory_limit_bytes") || f.equals("activation_memory_budget_bytes")) it.remove();
                else dropVolatile(o.get(f));
            }
        } else if (n.isArray()) {
            for (JsonNode c : n) dropVolatile(c);
        }
    }
}
