package casp.fuzz;

import casp.TestData;
import casp.cli.CliRunner;
import casp.compress.OutputLock;
import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static casp.fuzz.Hostile.assertRefused;
import static casp.fuzz.Hostile.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The causes of crashes, silent garbage and misplaced writes found by hostile use, each with its
 * original example and neighbours: refused with exit 2 and one line naming the file, tensor or flag.
 */
class HostileInputTest {
    @TempDir
    Path tmp;

    static Path stories() { return TestData.model("stories260K"); }

    static Path text() { return TestData.file("models/stories260K/reference/eval.txt"); }

    static Path llava() { return TestData.model("tiny-llava"); }

    Path storiesCopy() { return Hostile.copyModel(stories(), tmp.resolve("model")); }

    static CliRunner.Result generate(Path model) {
        return run("generate", "--model", model.toString(), "--prompt", "Once upon a time", "--max-tokens", "4", "--json");
    }

    // 1. Decompression bombs and extreme aspect ratios: refused from the header, before decoding.
    @ParameterizedTest
    @CsvSource({"1000000,1", "1,1000000", "30000,30000", "100000,1", "1,100000", "20000,20000", "9460,9460", "65535,65535"})
    void imagesOverThePixelBudgetAreRefusedFromTheirHeader(long w, long h) throws Exception {
        Path f = tmp.resolve("bomb-" + w + "x" + h + ".png");
        Files.write(f, Hostile.pngClaiming(w, h));
        BadInputException e = assertThrows(BadInputException.class, () -> ImagePreprocessor.clip(64).process(f));
        assertTrue(e.getMessage().startsWith(f.toString()) && e.getMessage().contains(w + "x" + h), e.getMessage());
        assertRefused(run("generate", "--model", llava().toString(), "--image", f.toString(), "--prompt", "What?", "--max-tokens", "2"),
                f.getFileName().toString());
    }

    @ParameterizedTest
    @CsvSource({"1000000,1", "1,400000", "200000,2"})
    void realStripsWhoseResizeWouldExplodeAreRefused(int w, int h) throws Exception {
        Path f = tmp.resolve("strip.png");
        Files.write(f, Hostile.png(w, h, BufferedImage.TYPE_BYTE_GRAY));
        BadInputException e = assertThrows(BadInputException.class, () -> ImagePreprocessor.clip(336).process(f));
        assertTrue(e.getMessage().contains("resized image"), e.getMessage());
    }

    @Test
    void aLongButReasonableImageIsStillProcessed() throws Exception {
        Path f = tmp.resolve("wide.png");
        Files.write(f, Hostile.png(3000, 2, BufferedImage.TYPE_INT_RGB));
        float[] px = ImagePreprocessor.clip(64).process(f);
        assertEquals(3 * 64 * 64, px.length);
        for (float v : px) assertTrue(Float.isFinite(v));
    }

    // 2. Shapes whose element count overflows a long.
    @ParameterizedTest
    @ValueSource(strings = {"[4294967296, 4294967296, 4]", "[4611686018427387904, 4]", "[3037000500, 3037000500]",
            "[9223372036854775807, 2]", "[2147483648, 2147483648, 2147483648]"})
    void overflowingShapesAreRefusedByTensor(String shape) throws Exception {
        Path m = storiesCopy();
        Path st = m.resolve("model.safetensors");
        Hostile.editHeader(st, h -> ((ObjectNode) h.get("model.norm.weight")).set("shape", parse(shape)));
        for (CliRunner.Result r : List.of(run("inspect", m.toString()), generate(m))) assertRefused(r, "model.norm.weight");
    }

    @Test
    void aTensorLargerThanAJavaArrayIsRefusedByName() throws Exception {
        // a header whose offsets agree with a 2^31-element shape, over a sparse file of that size
        Path m = storiesCopy();
        Path st = m.resolve("model.safetensors");
        ObjectNode h = Hostile.header(st);
        long end = h.get("model.norm.weight").get("data_offsets").get(1).asLong();
        long dataLen = Files.size(st) - Hostile.dataStart(st);
        ObjectNode big = h.putObject("zz.big");
        big.put("dtype", "U8");
        big.set("shape", parse("[2147483648]"));
        big.set("data_offsets", parse("[" + dataLen + ", " + (dataLen + (1L << 31)) + "]"));
        Hostile.replaceHeader(st, Hostile.JSON.writeValueAsString(h));
        try (var ch = java.nio.channels.FileChannel.open(st, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(Files.size(st)); // keep, then extend sparsely
            ch.write(java.nio.ByteBuffer.wrap(new byte[1]), Files.size(st) + (1L << 31) - 1);
        }
        var f = casp.io.SafeTensorsFile.open(st);
        BadInputException e = assertThrows(BadInputException.class, () -> f.readBytes("zz.big"));
        assertTrue(e.getMessage().contains("zz.big") && e.getMessage().contains("Java array"), e.getMessage());
        assertTrue(end > 0);
        Files.delete(st);
    }

    // 3. NaN / Inf weights and fp16 scales: refused at load with the tensor named.
    @ParameterizedTest
    @ValueSource(floats = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
    void nonFiniteWeightsAreRefusedAtLoad(float bad) throws Exception {
        Path m = storiesCopy();
        Hostile.putFloat(m.resolve("model.safetensors"), "model.layers.2.mlp.down_proj.weight", 17, bad);
        assertRefused(generate(m), "model.layers.2.mlp.down_proj.weight");
        assertRefused(run("eval", "ppl", "--model", m.toString(), "--text", text().toString(), "--ctx", "64"),
                "model.layers.2.mlp.down_proj.weight");
        assertRefused(run("compress", "--model", m.toString(), "--calib", text().toString(), "--method", "gptq", "--bits", "4",
                "--samples", "2", "--seq-len", "32", "--out", tmp.resolve("q").toString()), "model.layers.2.mlp.down_proj.weight");
        assertFalse(Files.exists(tmp.resolve("q")));
        assertFalse(Files.exists(tmp.resolve("q.partial")));
    }

    @ParameterizedTest
    @ValueSource(shorts = {0x7c00, (short) 0xfc00, 0x7e00, 0x7c01})
    void nonFiniteFp16ScalesOfACompressedModelAreRefused(short half) throws Exception {
        Path q = compressedStories(tmp.resolve("q"));
        String scales = "model.layers.1.self_attn.v_proj.scales";
        Hostile.putShort(q.resolve("model.safetensors"), scales, 3, half);
        assertRefused(generate(q), scales);
        assertRefused(run("verify", q.toString()), scales);
    }

    @Test
    void verifyPassesAnUntouchedFolderAndListsEveryChange() throws Exception {
        Path q = compressedStories(tmp.resolve("q"));
        CliRunner.Result ok = run("verify", q.toString());
        assertEquals(0, ok.exitCode(), ok.err());
        assertTrue(ok.out().contains("match casp-report.json"), ok.out());
        Hostile.putFloat(q.resolve("model.safetensors"), "model.norm.weight", 0, 1.25f);
        Files.writeString(q.resolve("tokenizer_config.json"), "{}");
        Files.delete(q.resolve("generation_config.json"));
        CliRunner.Result bad = run("verify", q.toString(), "--json");
        assertEquals(2, bad.exitCode());
        var problems = Hostile.JSON.readTree(bad.out()).get("problems");
        assertEquals(3, problems.size(), bad.out());
        assertTrue(problems.toString().contains("model.norm.weight") && problems.toString().contains("tokenizer_config.json")
                && problems.toString().contains("generation_config.json"), bad.out());
        assertRefused(run("verify", tmp.resolve("model-none").toString()), "model-none");
        assertRefused(run("verify", stories().toString()), "casp-report.json");
    }

    // 4. Calibration sizes over the machine's memory are refused before any work.
    @ParameterizedTest
    @ValueSource(strings = {"2000000000", "2147483647", "300000000"})
    void calibrationLargerThanTheHeapIsRefused(String samples) {
        long t0 = System.nanoTime();
        CliRunner.Result r = run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "gptq",
                "--bits", "4", "--samples", samples, "--seq-len", "512", "--out", tmp.resolve("q").toString());
        assertRefused(r, "--samples " + samples);
        assertTrue(System.nanoTime() - t0 < 60e9, "refused before any work");
        assertFalse(Files.exists(tmp.resolve("q.partial")));
    }

    // 5. Output I/O: an unwritable destination is found before the work; two runs on one --out refuse each other.
    @Test
    void aDestinationUnderAFileIsRefusedBeforeCompressing() throws Exception {
        Path file = Files.writeString(tmp.resolve("plain-file"), "x");
        for (String cp : List.of("true", "false")) {
            assertRefused(run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "gptq",
                    "--bits", "4", "--samples", "2", "--seq-len", "32", "--checkpoint", cp, "--out", file.resolve("q").toString()),
                    "plain-file");
        }
        assertEquals("x", Files.readString(file));
    }

    @Test
    void aReadOnlyDestinationIsRefusedBeforeCompressing() throws Exception {
        Path ro = Files.createDirectory(tmp.resolve("ro"));
        assertTrue(ro.toFile().setWritable(false, false));
        try {
            // root ignores directory permissions; /proc/self refuses new files even to root
            Path parent = Files.isWritable(ro) && Files.isDirectory(Path.of("/proc/self")) ? Path.of("/proc/self") : ro;
            assertRefused(run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "gptq",
                    "--bits", "4", "--samples", "2", "--seq-len", "32", "--checkpoint", "false", "--out", parent.resolve("q").toString()),
                    parent.toString());
        } finally {
            ro.toFile().setWritable(true, false);
        }
    }

    @Test
    void aSecondRunOnTheSameOutIsRefusedAsConcurrentNotInterrupted() throws Exception {
        Path out = tmp.resolve("q");
        try (OutputLock held = OutputLock.acquire(out)) {
            CliRunner.Result r = run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "gptq",
                    "--bits", "4", "--samples", "2", "--seq-len", "32", "--out", out.toString(), "--force");
            assertRefused(r, "another casp run");
            assertFalse(r.err().contains("interrupted"), r.err());
        }
        assertFalse(Files.exists(out));
        // released: the next run works
        assertEquals(0, run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "rtn",
                "--bits", "4", "--samples", "2", "--seq-len", "32", "--out", out.toString()).exitCode());
        try (var s = Files.list(tmp)) {
            assertEquals(List.of("q"), s.map(p -> p.getFileName().toString()).sorted().toList(), "no lock or probe file left");
        }
    }

    // 6. Image paths in conversation JSON are confined to the images folder.
    @ParameterizedTest
    @ValueSource(strings = {"../../x.png", "/etc/passwd", "../calib.json", "sub/../../outside.png", "./../images2/img.png", ""})
    void imagePathsLeavingTheImagesFolderAreRefused(String name) throws Exception {
        Path data = Files.createDirectories(tmp.resolve("data"));
        Path images = Files.createDirectories(data.resolve("images"));
        Files.createDirectories(tmp.resolve("data/images2"));
        Files.write(tmp.resolve("data/images2/img.png"), Hostile.png(8, 8, BufferedImage.TYPE_INT_RGB));
        Files.write(tmp.resolve("outside.png"), Hostile.png(8, 8, BufferedImage.TYPE_INT_RGB));
        Path json = data.resolve("conv.json");
        Files.writeString(json, "[{\"id\": \"a\", \"image\": " + Hostile.JSON.writeValueAsString(name)
                + ", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWhat?\"}, {\"from\": \"gpt\", \"value\": \"A.\"}]}]");
        CliRunner.Result vqa = run("eval", "vqa", "--model", llava().toString(), "--data", json.toString(), "--images", images.toString());
        assertRefused(vqa, "conv.json");
        assertFalse(vqa.err().contains("root:"), "no content of the file echoed");
        assertRefused(run("compress", "--model", llava().toString(), "--calib", json.toString(), "--images", images.toString(),
                "--method", "gptq", "--bits", "4", "--samples", "1", "--out", tmp.resolve("q").toString()), "conv.json");
    }

    @Test
    void aSymbolicLinkOutOfTheImagesFolderIsRefused() throws Exception {
        Path images = Files.createDirectories(tmp.resolve("images"));
        Files.write(tmp.resolve("secret.png"), Hostile.png(8, 8, BufferedImage.TYPE_INT_RGB));
        Files.createSymbolicLink(images.resolve("link.png"), tmp.resolve("secret.png"));
        Path json = tmp.resolve("conv.json");
        Files.writeString(json, "[{\"id\": \"a\", \"image\": \"link.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nQ\"}]}]");
        BadInputException e = assertThrows(BadInputException.class, () -> casp.io.LlavaDataset.load(json, images));
        assertTrue(e.getMessage().contains("link"), e.getMessage());
    }

    // 7. Config integers and floats out of range.
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "num_hidden_layers; -1", "num_hidden_layers; 2147483647", "num_hidden_layers; 0", "num_hidden_layers; 4",
            "head_dim; 2147483647", "head_dim; 0", "head_dim; 9", "hidden_size; 64.5", "hidden_size; 0", "hidden_size; 99999999999",
            "intermediate_size; -5", "vocab_size; 2147483647", "num_attention_heads; 0", "num_key_value_heads; 3",
            "max_position_embeddings; 0", "rms_norm_eps; -1", "rms_norm_eps; 0", "rms_norm_eps; 5", "rope_theta; 0",
            "rope_theta; -10000", "rope_theta; 1e400", "rope_theta; 1e-300", "rope_theta; 0.5", "hidden_size; \"64\"", "num_hidden_layers; 5.0001"})
    void badTextConfigValuesAreRefused(String field, String value) throws Exception {
        Path m = storiesCopy();
        Files.writeString(m.resolve("config.json"), Files.readString(m.resolve("config.json"))
                .replaceFirst("\"" + field + "\": [^,\\n]+", "\"" + field + "\": " + value));
        String mention = field.equals("num_key_value_heads") ? "num_key_value_heads" : field;
        assertRefused(run("inspect", m.toString()), mention.equals("hidden_size") && value.equals("99999999999") ? "hidden_size" : mention);
        assertRefused(generate(m), null);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"vision_config; patch_size; 0", "vision_config; patch_size; 65",
            "vision_config; image_size; 2147483647", "vision_config; num_hidden_layers; 3", "vision_config; hidden_size; 127",
            "vision_config; layer_norm_eps; -1", "text_config; num_hidden_layers; 3", "text_config; hidden_size; 256.5",
            "; vision_feature_layer; -9", "; image_token_index; 448"})
    void badLlavaConfigValuesAreRefused(String section, String field, String value) throws Exception {
        Path m = Hostile.copyModel(llava(), tmp.resolve("llava"));
        Hostile.editJson(m.resolve("config.json"), c -> {
            ObjectNode n = section == null ? c : (ObjectNode) c.get(section);
            n.set(field, Hostile.JSON.valueToTree(parseNumber(value)));
        });
        assertRefused(run("inspect", m.toString()), field);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {"image_std; [0.26, 0, 0.27]", "image_std; 0", "image_mean; [1, 2]",
            "size; {\"shortest_edge\": 2147483647}", "size; {\"shortest_edge\": 0}", "crop_size; {\"height\": 100000, \"width\": 100000}",
            "rescale_factor; -1", "image_std; [\"a\", 1, 1]"})
    void badPreprocessorValuesAreRefused(String field, String value) throws Exception {
        Path m = Hostile.copyModel(llava(), tmp.resolve("llava"));
        Hostile.editJson(m.resolve("preprocessor_config.json"), c -> c.set(field, parse(value)));
        Path img = Files.write(tmp.resolve("i.png"), Hostile.png(16, 16, BufferedImage.TYPE_INT_RGB));
        assertRefused(run("generate", "--model", m.toString(), "--image", img.toString(), "--prompt", "Q", "--max-tokens", "2"),
                "preprocessor_config.json");
    }

    // 8. --resume verifies what it resumes: changed weights or a damaged checkpoint are refused.
    @Test
    void resumeRefusesChangedWeightsAndDamagedCheckpoints() throws Exception {
        Path m = storiesCopy();
        Path out = tmp.resolve("q");
        interruptedRun(m, out, 2);
        Path cp = casp.compress.Checkpoint.dirFor(out);
        List<Path> files;
        try (var s = Files.list(cp)) {
            files = s.filter(f -> f.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
        assertTrue(files.size() >= 2, "blocks and activations: " + files);
        for (Path f : files) { // a flipped byte in each checkpoint file
            byte[] orig = Files.readAllBytes(f), b = orig.clone();
            b[b.length - 5] ^= 0x10;
            Files.write(f, b);
            assertRefused(resume(m, out), f.getFileName().toString());
            Files.write(f, orig);
        }
        Path state = cp.resolve("state.json");
        String s = Files.readString(state);
        Files.writeString(state, s.replaceFirst("\"seconds\" : [0-9.eE-]+", "\"seconds\" : 1234.5"));
        assertRefused(resume(m, out), "state.json");
        Files.writeString(state, s);
        Hostile.putFloat(m.resolve("model.safetensors"), "model.layers.4.mlp.up_proj.weight", 3, 0.5f); // weights changed
        assertRefused(resume(m, out), "model.safetensors");
        assertFalse(Files.exists(out));
    }

    // 9. Inconsistent metadata.
    @Test
    void duplicateTensorNamesAreRefusedAsDuplicates() throws Exception {
        Path m = storiesCopy();
        Path st = m.resolve("model.safetensors");
        String h = Hostile.JSON.writeValueAsString(Hostile.header(st));
        String entry = h.substring(h.indexOf("\"model.norm.weight\""));
        entry = entry.substring(0, entry.indexOf('}', entry.indexOf("data_offsets")) + 1);
        Hostile.replaceHeader(st, h.substring(0, h.length() - 1) + "," + entry + "}");
        CliRunner.Result r = run("inspect", m.toString());
        assertRefused(r, "model.norm.weight");
        assertTrue(r.err().contains("twice") && !r.err().contains("gap"), r.err());
    }

    @ParameterizedTest
    @ValueSource(ints = {16, 17, 127, -9, -128})
    void aqlmCodesOutsideTheCodebookAreRefused(int code) throws Exception {
        int k = 16; // 4-bit codebooks in I8 codes: [-8, 16) are valid
        casp.io.SafeTensorsWriter w = new casp.io.SafeTensorsWriter();
        byte[] codes = new byte[2 * 2]; // 2 rows, 1 group of 8 inputs, 2 codebooks
        codes[3] = (byte) code;
        w.add("l.codes", casp.tensor.DType.I8, new long[]{2, 1, 2}, out -> { var b = java.nio.ByteBuffer.wrap(codes); while (b.hasRemaining()) out.write(b); });
        w.addF16("l.codebooks", new long[]{2, k, 1, 8}, new float[2 * k * 8]);
        w.addF16("l.scales", new long[]{2, 1, 1, 1}, new float[]{1, 1});
        Path f = tmp.resolve("aqlm.safetensors");
        w.write(f);
        var st = casp.io.SafeTensorsFile.open(f);
        assertFalse((byte) code >= -k / 2 && (byte) code < k, "an out-of-range example");
        BadInputException e = assertThrows(BadInputException.class, () -> casp.quant.aqlm.AqlmTensors.read(st, "l", 2, 8, 2, 4));
        assertTrue(e.getMessage().contains("l.codes") && e.getMessage().contains("codebook"), e.getMessage());
    }

    // 10. Clobbering: --out equal to, inside or around --model; sparsity results replaced only with --force.
    @Test
    void compressNeverWritesOverOrInsideItsInput() throws Exception {
        Path m = storiesCopy();
        Map<String, String> before = Hostile.snapshot(tmp);
        for (Path out : List.of(m, m.resolve("q"), tmp, m.resolve("."), m.resolve("../model"))) {
            assertRefused(run("compress", "--model", m.toString(), "--calib", text().toString(), "--method", "rtn", "--bits", "4",
                    "--samples", "2", "--seq-len", "32", "--out", out.toString(), "--force"), "--model");
        }
        assertEquals(before, Hostile.snapshot(tmp), "nothing changed");
    }

    @Test
    void sparsityNeedsForceToReplaceItsResults() throws Exception {
        Path out = tmp.resolve("s");
        String[] args = {"sparsity", "--model", stories().toString(), "--data", text().toString(), "--samples", "1", "--seq-len", "32",
                "--out", out.toString()};
        assertEquals(0, run(args).exitCode());
        byte[] json = Files.readAllBytes(out.resolve("sparsity.json"));
        Files.writeString(out.resolve("sparsity.json"), "mine");
        assertRefused(run(args), "sparsity.json");
        assertEquals("mine", Files.readString(out.resolve("sparsity.json")));
        String[] forced = java.util.Arrays.copyOf(args, args.length + 1);
        forced[args.length] = "--force";
        assertEquals(0, run(forced).exitCode());
        assertArrayEquals(json, Files.readAllBytes(out.resolve("sparsity.json")));
    }

    // 11. Messages that said the wrong thing.
    @Test
    void messagesSayWhatIsWrong() throws Exception {
        CliRunner.Result method = run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "awq",
                "--bits", "4", "--out", tmp.resolve("q").toString());
        assertRefused(method, "casp");

        Path m = storiesCopy();
        Files.move(m.resolve("model.safetensors"), tmp.resolve("model-00001.safetensors"));
        Files.writeString(m.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"model.norm.weight\": \"../model-00001.safetensors\"}}");
        CliRunner.Result shard = run("inspect", m.toString());
        assertRefused(shard, "outside the model folder");
        assertFalse(shard.err().contains("missing"), shard.err());

        Path binary = Files.write(tmp.resolve("calib.bin"), new byte[]{(byte) 0xff, (byte) 0xfe, 0, 1, (byte) 0xc3, 0x28});
        CliRunner.Result bin = run("compress", "--model", stories().toString(), "--calib", binary.toString(), "--method", "gptq",
                "--bits", "4", "--samples", "2", "--seq-len", "32", "--out", tmp.resolve("q").toString());
        assertRefused(bin, "UTF-8");
        assertFalse(bin.err().contains("Input length"), bin.err());
    }

    // ---------------------------------------------------------------- helpers

    /** A 4-bit GPTQ stories260K folder (small and quick). */
    static Path compressedStories(Path out) {
        CliRunner.Result r = run("compress", "--model", stories().toString(), "--calib", text().toString(), "--method", "gptq",
                "--bits", "4", "--samples", "2", "--seq-len", "32", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        return out;
    }

    /** A compress run on model stopped after `blocks` blocks, leaving its checkpoint. */
    static void interruptedRun(Path model, Path out, int blocks) throws Exception {
        casp.compress.CompressionOptions o = new casp.compress.CompressionOptions("gptq", 2, casp.compress.CompressionOptions.AUTO_GROUP,
                false, false, true, 2, 64, 0, 0.01);
        class Stop extends RuntimeException {}
        try {
            casp.compress.CompressionRun.run(new casp.compress.CompressionRun.Request(model, text(), null, o, out, false, false, true),
                    new casp.compress.SequentialCompressor.Listener() {
                        @Override public void blockDone(casp.compress.SequentialCompressor.BlockResult b, casp.compress.Calibration a) {
                            if (b.layer() + 1 == blocks) throw new Stop();
                        }
                    }, new java.io.PrintStream(new java.io.ByteArrayOutputStream()));
        } catch (Stop expected) {
            return;
        }
        throw new AssertionError("the run was not stopped");
    }

    static CliRunner.Result resume(Path model, Path out) {
        return run("compress", "--model", model.toString(), "--calib", text().toString(), "--method", "gptq", "--bits", "2",
                "--samples", "2", "--seq-len", "64", "--out", out.toString(), "--resume");
    }

    static com.fasterxml.jackson.databind.JsonNode parse(String json) {
        try {
            return Hostile.JSON.readTree(json);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static Object parseNumber(String v) {
        return v.contains(".") || v.contains("e") ? (Object) Double.parseDouble(v) : (Object) Long.parseLong(v);
    }
}
