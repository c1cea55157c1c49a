package casp.fuzz;

import casp.TestData;
import casp.cli.CliRunner;
import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import casp.io.LlavaDataset;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Seeded mutation fuzzing of every input kind a user hands to casp: safetensors headers,
 * config.json, tokenizer.json, images, conversation JSON and compressed model folders. Each
 * mutated input must get either a correct result or a refusal (exit 2, one line naming the file),
 * never a stack trace, never exit 0 with NaN or empty output, and no file may change outside the
 * command's --out.
 *
 * <p>The default run (CI) tries a few hundred inputs in well under a minute. A soak run multiplies
 * the counts: {@code -Dcasp.fuzz.scale=20}; {@code -Dcasp.fuzz.seed=S} changes the inputs. The
 * counts per kind are printed and written to target/fuzz-counts.txt.
 */
class FuzzTest {
    static final long SEED = Long.getLong("casp.fuzz.seed", 18);
    static final int SCALE = Integer.getInteger("casp.fuzz.scale", 1);
    static final Map<String, int[]> COUNTS = new TreeMap<>(); // kind -> {inputs, refused, accepted}

    @TempDir
    Path tmp;

    static Path stories() { return TestData.model("stories260K"); }

    static Path llava() { return TestData.model("tiny-llava"); }

    static Path shortText;

    @BeforeAll
    static void shortText(@TempDir Path dir) throws IOException {
        String t = Files.readString(TestData.file("models/stories260K/reference/eval.txt"));
        shortText = Files.writeString(dir.resolve("short.txt"), t.substring(0, 300));
    }

    @AfterAll
    static void report() throws IOException {
        StringBuilder sb = new StringBuilder("kind inputs refused accepted failures (seed " + SEED + ", scale " + SCALE + ")\n");
        COUNTS.forEach((k, c) -> sb.append(k).append(' ').append(c[0]).append(' ').append(c[1]).append(' ').append(c[2]).append(" 0\n"));
        System.out.print(sb);
        Path target = Path.of("target");
        if (Files.isDirectory(target)) Files.writeString(target.resolve("fuzz-counts" + (SCALE > 1 ? "-soak" : "") + ".txt"), sb.toString());
    }

    static void count(String kind, boolean refused) {
        int[] c = COUNTS.computeIfAbsent(kind, k -> new int[3]);
        c[0]++;
        c[refused ? 1 : 2]++;
    }

    // ---------------------------------------------------------------- model files through the CLI

    @Test
    void safetensorsHeaders() throws Exception {
        fuzzModelFile("safetensors-header", "model.safetensors", 60, SEED, (r, f) -> mutateSafetensors(r, f));
    }

    @Test
    void configJson() throws Exception {
        fuzzModelFile("config.json", "config.json", 60, SEED + 1, (r, f) -> mutateJson(r, f, TEXT_FIELDS));
    }

    @Test
    void tokenizerJson() throws Exception {
        fuzzModelFile("tokenizer.json", "tokenizer.json", 40, SEED + 2, (r, f) -> mutateJson(r, f, null));
    }

    private interface Mutation {
        String apply(SplittableRandom r, Path file) throws Exception;
    }

    /** count x SCALE mutations of one file of a copy of stories260K, each from the original bytes. */
    private void fuzzModelFile(String kind, String file, int count, long seed, Mutation mutate) throws Exception {
        Path m = Hostile.copyModel(stories(), tmp.resolve("model"));
        Path f = m.resolve(file);
        byte[] original = Files.readAllBytes(f);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < count * SCALE; i++) {
            Files.write(f, original);
            checkModelCommands(kind, m, mutate.apply(r, f), i);
        }
    }

    private void checkModelCommands(String kind, Path m, String what, int i) {
        String ctx = kind + " #" + i + " (" + what + ")";
        Map<String, String> before = Hostile.snapshot(tmp);
        CliRunner.Result gen = Hostile.run("generate", "--model", m.toString(), "--prompt", "Once upon a time", "--max-tokens", "3", "--json");
        boolean refused = checkResult(ctx + " generate", gen, m.toString());
        if (!refused) {
            JsonNode j = json(ctx, gen.out());
            assertTrue(j.path("ids").isArray() && !j.path("ids").isEmpty() || j.path("text").isTextual(), ctx + ": " + gen.out());
            assertTrue(!gen.out().contains("NaN"), ctx + ": NaN in " + gen.out());
            CliRunner.Result ppl = Hostile.run("eval", "ppl", "--model", m.toString(), "--text", shortText.toString(), "--ctx", "32", "--json");
            if (!checkResult(ctx + " eval ppl", ppl, m.toString())) {
                double p = json(ctx, ppl.out()).path("ppl").asDouble(Double.NaN);
                assertTrue(Double.isFinite(p) && p > 0, ctx + ": exit 0 with ppl " + p);
            }
        }
        if (i % 4 == 0) checkResult(ctx + " inspect", Hostile.run("inspect", m.toString(), "--json"), m.toString());
        assertEquals(before, Hostile.snapshot(tmp), ctx + ": a file changed");
        count(kind, refused);
    }

    /** The contract on one run; true when it was a refusal. */
    static boolean checkResult(String ctx, CliRunner.Result r, String mention) {
        try {
            Hostile.assertNoStackTrace(r);
            if (r.exitCode() == 0) {
                assertTrue(!r.out().isBlank(), "exit 0 with no output");
                return false;
            }
            Hostile.assertRefused(r, mention);
            return true;
        } catch (AssertionError e) {
            throw new AssertionError(ctx + ": " + e.getMessage() + "\nerr: " + r.err() + "\nout: " + r.out(), e);
        }
    }

    static JsonNode json(String ctx, String text) {
        try {
            return Hostile.JSON.readTree(text);
        } catch (IOException e) {
            fail(ctx + ": output is not JSON: " + text);
            return null;
        }
    }

    // ---------------------------------------------------------------- compressed folders

    @Test
    void compressedFolders() throws Exception {
        Path q = HostileInputTest.compressedStories(tmp.resolve("q-original"));
        SplittableRandom r = new SplittableRandom(SEED + 3);
        Path work = tmp.resolve("q");
        for (int i = 0; i < 30 * SCALE; i++) {
            deleteTree(work);
            Hostile.copyModel(q, work);
            String what;
            boolean weightsChanged = false;
            int op = r.nextInt(4);
            if (op == 0) { // flip bytes in the data section: verify must name a tensor
                Path st = work.resolve("model.safetensors");
                byte[] b = Files.readAllBytes(st);
                long start = Hostile.dataStart(st);
                int flips = 1 + r.nextInt(3);
                for (int k = 0; k < flips; k++) b[(int) (start + r.nextLong(b.length - start))] ^= (byte) (1 << r.nextInt(8));
                Files.write(st, b);
                weightsChanged = true;
                what = flips + " flipped data bytes";
            } else if (op == 1) {
                what = "header: " + mutateSafetensors(r, work.resolve("model.safetensors"));
                weightsChanged = !what.contains("metadata"); // __metadata__ is not part of any tensor
            } else {
                what = "config: " + mutateJson(r, work.resolve("config.json"), QUANT_FIELDS);
            }
            String ctx = "compressed #" + i + " (" + what + ")";
            Map<String, String> before = Hostile.snapshot(tmp);
            CliRunner.Result gen = Hostile.run("generate", "--model", work.toString(), "--prompt", "Once upon a time", "--max-tokens", "3", "--json");
            boolean refused = checkResult(ctx + " generate", gen, work.toString());
            if (!refused) assertTrue(!gen.out().contains("NaN"), ctx + ": NaN in " + gen.out());
            CliRunner.Result v = Hostile.run("verify", work.toString());
            checkResult(ctx + " verify", v, work.toString());
            if (weightsChanged && !sameBytes(work.resolve("model.safetensors"), q.resolve("model.safetensors")))
                assertEquals(2, v.exitCode(), ctx + ": verify passed a changed weights file: " + v.out());
            if (op >= 2 && !sameBytes(work.resolve("config.json"), q.resolve("config.json")))
                assertEquals(2, v.exitCode(), ctx + ": verify passed a changed config.json");
            assertEquals(before, Hostile.snapshot(tmp), ctx + ": a file changed");
            count("compressed-folder", refused);
        }
    }

    // ---------------------------------------------------------------- images and conversation JSON

    @Test
    void images() throws Exception {
        SplittableRandom r = new SplittableRandom(SEED + 4);
        ImagePreprocessor pre = ImagePreprocessor.clip(64);
        List<byte[]> seeds = List.of(Hostile.png(40, 30, BufferedImage.TYPE_INT_RGB), Hostile.png(9, 70, BufferedImage.TYPE_BYTE_GRAY),
                Hostile.png(33, 33, BufferedImage.TYPE_INT_ARGB), jpeg(48, 20));
        Path f = tmp.resolve("img.bin");
        for (int i = 0; i < 300 * SCALE; i++) {
            byte[] b = seeds.get(r.nextInt(seeds.size())).clone();
            String what;
            int op = r.nextInt(5);
            if (op == 0) {
                long w = dimension(r), h = dimension(r);
                b = Hostile.pngClaiming(w, h);
                what = "header claims " + w + "x" + h;
            } else if (op == 1) {
                int n = 1 + r.nextInt(8);
                for (int k = 0; k < n; k++) b[r.nextInt(Math.min(b.length, 64))] ^= (byte) (1 << r.nextInt(8));
                what = n + " flips in the first 64 bytes";
            } else if (op == 2) {
                int n = 1 + r.nextInt(8);
                for (int k = 0; k < n; k++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                what = n + " random bytes";
            } else if (op == 3) {
                b = java.util.Arrays.copyOf(b, r.nextInt(b.length));
                what = "truncated to " + b.length;
            } else {
                b = Hostile.png(1 + r.nextInt(3000), 1 + r.nextInt(3), BufferedImage.TYPE_BYTE_GRAY);
                what = "a real strip";
            }
            Files.write(f, b);
            String ctx = "image #" + i + " (" + what + ")";
            boolean refused;
            try {
                float[] px = pre.process(f);
                assertEquals(3 * 64 * 64, px.length, ctx);
                for (float v : px) assertTrue(Float.isFinite(v), ctx + ": non-finite pixel");
                refused = false;
            } catch (BadInputException e) {
                assertTrue(e.getMessage().startsWith(f.toString()), ctx + ": message does not name the file: " + e.getMessage());
                assertTrue(!e.getMessage().contains("\n"), ctx + ": one line");
                refused = true;
            } catch (RuntimeException | OutOfMemoryError e) {
                throw new AssertionError(ctx + ": " + e, e);
            }
            count("image", refused);
        }
    }

    @Test
    void conversationJson() throws Exception {
        SplittableRandom r = new SplittableRandom(SEED + 5);
        Path data = Files.createDirectories(tmp.resolve("data"));
        Path images = Files.createDirectories(data.resolve("images"));
        Files.write(images.resolve("a.png"), Hostile.png(16, 16, BufferedImage.TYPE_INT_RGB));
        Files.createDirectories(images.resolve("sub"));
        Files.write(images.resolve("sub/b.png"), Hostile.png(16, 16, BufferedImage.TYPE_INT_RGB));
        Files.write(tmp.resolve("outside.png"), Hostile.png(16, 16, BufferedImage.TYPE_INT_RGB));
        Path json = data.resolve("conv.json");
        String[] names = {"a.png", "sub/b.png", "../outside.png", "../../outside.png", "/etc/passwd", "sub/../a.png", "sub/../../outside.png",
                "", ".", "sub", "missing.png", "a.png/../../outside.png", "\u0000a.png", "./a.png"};
        Path imagesReal = images.toRealPath();
        for (int i = 0; i < 150 * SCALE; i++) {
            ArrayNode root = Hostile.JSON.createArrayNode();
            int records = 1 + r.nextInt(3);
            for (int k = 0; k < records; k++) root.add(record(r, names));
            String text = Hostile.JSON.writeValueAsString(root);
            if (r.nextInt(6) == 0) text = text.substring(0, r.nextInt(text.length())); // truncated
            Files.write(json, text.getBytes(StandardCharsets.UTF_8)); // a cut surrogate pair becomes '?'
            String ctx = "conversation #" + i + " (" + text.substring(0, Math.min(200, text.length())) + ")";
            boolean refused;
            try {
                List<LlavaDataset.Sample> samples = LlavaDataset.load(json, images);
                for (LlavaDataset.Sample s : samples) {
                    if (s.image() != null) assertTrue(s.image().toRealPath().startsWith(imagesReal), ctx + ": image outside the folder: " + s.image());
                    assertTrue(!s.turns().isEmpty(), ctx);
                }
                refused = false;
            } catch (BadInputException e) {
                assertTrue(e.getMessage().startsWith(json.toString()), ctx + ": message does not name the file: " + e.getMessage());
                refused = true;
            } catch (RuntimeException e) {
                throw new AssertionError(ctx + ": " + e, e);
            }
            if (i % 25 == 0) { // and through the CLI on the LLaVA model
                Map<String, String> before = Hostile.snapshot(tmp);
                CliRunner.Result v = Hostile.run("eval", "vqa", "--model", llava().toString(), "--data", json.toString(),
                        "--images", images.toString(), "--limit", "1", "--max-tokens", "2", "--json");
                assertEquals(refused, checkResult(ctx + " eval vqa", v, json.toString()), ctx + ": the CLI and the loader disagree");
                assertEquals(before, Hostile.snapshot(tmp), ctx + ": a file changed");
            }
            count("conversation-json", refused);
        }
    }

    private static ObjectNode record(SplittableRandom r, String[] names) {
        ObjectNode rec = Hostile.JSON.createObjectNode();
        if (r.nextInt(3) > 0) { // a valid record, with at most one field changed
            rec.put("id", "r" + r.nextInt(100));
            rec.put("image", r.nextBoolean() ? "a.png" : "sub/b.png");
            ArrayNode conv = rec.putArray("conversations");
            conv.addObject().put("from", "human").put("value", "<image>\nWhat is it?");
            conv.addObject().put("from", "gpt").put("value", "A red square.");
            if (r.nextInt(3) == 0) rec.put("image", names[r.nextInt(names.length)]);
            return rec;
        }
        if (r.nextInt(5) > 0) rec.put("id", "r" + r.nextInt(100));
        int imageKind = r.nextInt(6);
        if (imageKind < 4) rec.put("image", names[r.nextInt(names.length)]);
        else if (imageKind == 4) rec.put("image", r.nextInt(10));
        ArrayNode conv = rec.putArray(r.nextInt(12) == 0 ? "conversation" : "conversations");
        int turns = r.nextInt(4);
        for (int t = 0; t < turns; t++) {
            ObjectNode turn = conv.addObject();
            String[] from = {"human", "gpt", "system", "robot", ""};
            if (r.nextInt(10) > 0) turn.put("from", from[r.nextInt(r.nextInt(8) == 0 ? from.length : 2)]);
            String[] values = {"<image>\nWhat is it?", "A red square.", "<image><image>", "", "\uD83D\uDE00 <image>", "\n<image>"};
            if (r.nextInt(10) > 0) turn.put("value", values[r.nextInt(values.length)]);
            else turn.put("value", r.nextInt());
        }
        return rec;
    }

    // ---------------------------------------------------------------- mutators

    static final String[] TEXT_FIELDS = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_theta", "model_type",
            "hidden_act", "tie_word_embeddings", "bos_token_id", "eos_token_id", "rope_scaling", "attention_bias"};
    static final String[] QUANT_FIELDS = {"quantization_config", "quantization_config.bits", "quantization_config.group_size",
            "quantization_config.quant_method", "quantization_config.sym", "quantization_config.desc_act",
            "quantization_config.casp", "quantization_config.casp.bits", "quantization_config.checkpoint_format", "hidden_size"};

    static final Object[] VALUES = {0, -1, 1, 2, 3, 7, 64, 65, 4096, Integer.MAX_VALUE, Long.MAX_VALUE, -2147483648L, 64.5, 1e-300, 1e300,
            -0.0, "64", "", "llama", "qwen2", "gptq", true, false, null};

    /** One random edit of a JSON file: a field (from fields, or any found in the file) set, removed or given a random value; or bytes changed. */
    static String mutateJson(SplittableRandom r, Path file, String[] fields) throws IOException {
        String text = Files.readString(file);
        int op = r.nextInt(10);
        if (op == 0) {
            String t = text.substring(0, r.nextInt(text.length()));
            Files.writeString(file, t);
            return "truncated to " + t.length() + " chars";
        }
        if (op == 1) {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            int n = 1 + r.nextInt(4);
            for (int k = 0; k < n; k++) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
            Files.write(file, b);
            return n + " random bytes";
        }
        ObjectNode root = (ObjectNode) Hostile.JSON.readTree(text);
        List<String> paths = new ArrayList<>();
        if (fields != null) paths.addAll(List.of(fields));
        else collectPaths(root, "", paths, 0);
        String path = paths.get(r.nextInt(paths.size()));
        ObjectNode parent = root;
        String[] parts = path.split("\\.");
        for (int k = 0; k < parts.length - 1; k++) {
            JsonNode n = parent.get(parts[k]);
            if (!(n instanceof ObjectNode o)) { parent = null; break; }
            parent = o;
        }
        String key = parts[parts.length - 1];
        String what;
        if (parent == null) {
            what = path + " (absent)";
        } else if (op == 2) {
            parent.remove(key);
            what = "removed " + path;
        } else if (op == 3 && parent.get(key) instanceof ObjectNode o && o.size() > 0) {
            String victim = o.fieldNames().next();
            o.remove(victim);
            what = "removed " + path + "." + victim;
        } else {
            Object v = VALUES[r.nextInt(VALUES.length)];
            parent.set(key, Hostile.JSON.valueToTree(v));
            what = path + " = " + v;
        }
        Files.writeString(file, Hostile.JSON.writeValueAsString(root));
        return what;
    }

    private static void collectPaths(JsonNode n, String prefix, List<String> out, int depth) {
        if (!(n instanceof ObjectNode) || depth > 2) return;
        int taken = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext() && taken < 40; taken++) {
            Map.Entry<String, JsonNode> e = it.next();
            String p = prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey();
            if (e.getKey().contains(".")) continue;
            out.add(p);
            collectPaths(e.getValue(), p, out, depth + 1);
        }
    }

    /** One random edit of a safetensors header (or of its length field, or a truncation). */
    static String mutateSafetensors(SplittableRandom r, Path st) throws IOException {
        int op = r.nextInt(12);
        if (op == 0) {
            byte[] b = Files.readAllBytes(st);
            int n = r.nextInt(b.length);
            Files.write(st, java.util.Arrays.copyOf(b, n));
            return "truncated to " + n + " bytes";
        }
        if (op == 1) {
            byte[] b = Files.readAllBytes(st);
            long v = r.nextInt(3) == 0 ? r.nextLong() : r.nextInt(b.length * 2);
            java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(0, v);
            Files.write(st, b);
            return "header length " + v;
        }
        if (op == 2) {
            byte[] b = Files.readAllBytes(st);
            long start = Hostile.dataStart(st);
            int n = 1 + r.nextInt(4);
            for (int k = 0; k < n; k++) b[8 + r.nextInt((int) start - 8)] = (byte) (32 + r.nextInt(95));
            Files.write(st, b);
            return n + " random header characters";
        }
        ObjectNode h = Hostile.header(st);
        List<String> names = new ArrayList<>();
        h.fieldNames().forEachRemaining(n -> { if (!n.equals("__metadata__")) names.add(n); });
        String name = names.get(r.nextInt(names.size()));
        ObjectNode t = (ObjectNode) h.get(name);
        String what;
        switch (op) {
            case 3 -> { t.put("dtype", new String[]{"F16", "BF16", "I32", "U8", "F64", "I64", "Q4", "", "f32"}[r.nextInt(9)]); what = name + " dtype " + t.get("dtype"); }
            case 4 -> {
                ArrayNode s = t.putArray("shape");
                int dims = r.nextInt(4);
                for (int k = 0; k < dims; k++) s.add(new long[]{0, 1, 2, 64, 4294967296L, 9223372036854775807L, -1, 2147483648L}[r.nextInt(8)]);
                what = name + " shape " + s;
            }
            case 5 -> {
                ArrayNode o = (ArrayNode) t.get("data_offsets");
                long b = o.get(0).asLong(), e = o.get(1).asLong(), d = new long[]{1, -1, 4, -4, 1L << 40, Long.MIN_VALUE / 2}[r.nextInt(6)];
                o.removeAll();
                if (r.nextBoolean()) { o.add(b + d); o.add(e + d); } else { o.add(b); o.add(e + d); }
                what = name + " data_offsets " + o;
            }
            case 6 -> { t.remove(new String[]{"dtype", "shape", "data_offsets"}[r.nextInt(3)]); what = name + " field removed"; }
            case 7 -> { h.remove(name); what = name + " removed"; }
            case 8 -> { h.set(name + ".x", h.remove(name)); what = name + " renamed"; }
            case 9 -> { h.put(name, 7); what = name + " = 7"; }
            case 10 -> { h.putObject("__metadata__").put("format", "pt").putObject("nested"); what = "metadata with an object"; }
            default -> { t.set("shape", Hostile.JSON.valueToTree(new Object[]{64.5, "x"})); what = name + " non-integer shape"; }
        }
        Hostile.replaceHeader(st, Hostile.JSON.writeValueAsString(h));
        return what;
    }

    private static long dimension(SplittableRandom r) {
        return new long[]{1, 2, 64, 3000, 9460, 9461, 40000, 100000, 1000000, 2147483647L, 0}[r.nextInt(11)];
    }

    private static byte[] jpeg(int w, int h) throws IOException {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, x * 5 << 16 | y * 9 << 8 | (x ^ y));
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        javax.imageio.ImageIO.write(img, "jpg", out);
        return out.toByteArray();
    }

    private static boolean sameBytes(Path a, Path b) throws IOException {
        return java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (var s = Files.walk(p)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(q);
        }
    }
}
