package casp.compress;

import casp.TestData;
import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.Tokenizer;
import casp.io.WeightStore;
import casp.kernel.GptqPacking;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.LlamaModel;
import casp.quant.QuantizationConfig;
import casp.quant.gptq.QuantizedLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The compressed-model folder: contents, round trip through the loader, atomic writing. */
class CompressedModelWriterTest {
    static Path dir;
    static ModelFolder source;
    static LlamaModel compressed;
    static List<LinearResult> results;
    static CompressionOptions options;

    @BeforeAll
    static void compress() {
        dir = TestData.model("stories260K");
        source = ModelFolder.open(dir);
        compressed = LlamaModel.load(source);
        // 3 bits with the default groups: per channel for width 64, groups of 86 (padded at runtime) for 172.
        options = new CompressionOptions("gptq", 3, CompressionOptions.AUTO_GROUP, true, false, true, 8, 128, 1, 0.01);
        Calibration calib = Calibration.fromTextFile(compressed, Tokenizer.load(dir),
                TestData.file("models/stories260K/reference/eval.txt"), 8, 128, 1);
        results = new ArrayList<>();
        for (BlockResult b : new SequentialCompressor(compressed, options.plan(compressed), true).run(calib, null))
            results.addAll(b.linears());
    }

    private static ObjectNode report() {
        return new ObjectMapper().createObjectNode().put("test", true);
    }

    private static Path write(Path out, boolean force) throws IOException {
        CompressedModelWriter.write(source, results, CompressedModelWriter.quantizationConfig(source, options, results),
                report(), out, force);
        return out;
    }

    @Test
    void folderHasGptqTensorsCopiesAndConfig(@TempDir Path tmp) throws Exception {
        Path out = write(tmp.resolve("q3"), false);
        for (String f : new String[]{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "generation_config.json", "special_tokens_map.json", "casp-report.json"})
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        assertArrayEquals(Files.readAllBytes(dir.resolve("tokenizer.json")), Files.readAllBytes(out.resolve("tokenizer.json")));

        JsonNode q = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("gptq", q.get("quant_method").asText());
        assertEquals(3, q.get("bits").asInt());
        assertEquals("gptq", q.get("checkpoint_format").asText());
        assertFalse(q.get("desc_act").asBoolean(), "act-order with static groups leaves every g_idx in input order");
        // the down_proj groups of 86 differ from the per-channel majority: GPTQModel's dynamic says so
        JsonNode down = q.path("dynamic").path("+:^model\\.layers\\.4\\.mlp\\.down_proj$");
        assertEquals(86, down.path("group_size").asInt(), q.path("dynamic").toString());
        assertEquals(3, down.path("bits").asInt());
        assertTrue(q.path("dynamic").path("+:^model\\.layers\\.4\\.mlp\\.up_proj$").isMissingNode());
        assertEquals("gptq", q.path("casp").path("method").asText());
        assertEquals(3, q.path("casp").path("bits").path("model.layers.4.mlp.down_proj").asInt());
        assertEquals(86, q.path("casp").path("group_size").path("model.layers.4.mlp.down_proj").asInt());

        WeightStore in = WeightStore.open(dir), o = WeightStore.open(out);
        SafeTensorsFile src = SafeTensorsFile.open(dir.resolve("model.safetensors")), dst = SafeTensorsFile.open(out.resolve("model.safetensors"));
        int copied = 0;
        for (String name : in.names()) {
            if (name.endsWith("_proj.weight")) {
                assertFalse(o.has(name), name + " replaced");
                String p = name.substring(0, name.length() - ".weight".length());
                for (String s : new String[]{".qweight", ".qzeros", ".scales", ".g_idx"}) assertTrue(o.has(p + s), p + s);
                long inW = in.info(name).shape()[1], outW = in.info(name).shape()[0];
                assertArrayEquals(new long[]{GptqPacking.words((int) inW, 3), outW}, o.info(p + ".qweight").shape());
            } else {
                assertArrayEquals(src.readBytes(name), dst.readBytes(name), name + " copied byte for byte");
                assertEquals(in.info(name).dtype(), o.info(name).dtype());
                copied++;
            }
        }
        assertEquals(in.names().size() - 35 + 4 * 35, o.names().size());
        assertEquals(12, copied); // embeddings, 2 norms x 5 layers, final norm
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList(), "no temporary folder left beside the output");
        }
    }

    @Test
    void reloadedFolderRunsOnPackedWeightsWithTheSameLogits(@TempDir Path tmp) throws Exception {
        Path out = write(tmp.resolve("q3"), false);
        LlamaModel loaded = LlamaModel.load(out);
        for (int i = 0; i < loaded.numLayers(); i++) {
            for (String name : DecoderLayer.LINEARS) {
                assertTrue(loaded.layer(i).linear(name) instanceof QuantizedLinear, "layer " + i + " " + name + " is packed");
                float[] mem = ((DenseLinear) compressed.layer(i).linear(name)).weight();
                assertArrayEquals(mem, ((QuantizedLinear) loaded.layer(i).linear(name)).dequantize(), "layer " + i + " " + name);
            }
        }
        int[] ids = Tokenizer.load(dir).encode("Once upon a time, there was a little girl named Lily. She loved to play");
        float[] want = compressed.forward(ids, null, true), got = loaded.forward(ids, null, true);
        assertEquals(want.length, got.length);
        double maxDiff = 0;
        for (int i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
        assertTrue(maxDiff < 1e-3, "logits of the reloaded model differ by " + maxDiff);
        // One decoding step (the mat-vec path) agrees too.
        var cache = loaded.newCache(ids.length + 1);
        loaded.forward(ids, cache, false);
        float[] step = new float[loaded.vocabSize()];
        loaded.decode(42, cache, step);
        int[] ids2 = Arrays.copyOf(ids, ids.length + 1);
        ids2[ids.length] = 42;
        float[] full = compressed.forward(ids2, null, false);
        for (int i = 0; i < step.length; i++) assertEquals(full[i], step[i], 1e-3);
    }

    @Test
    void existingOutputIsRefusedWithoutForceAndReplacedWithIt(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("q");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "old");
        BadInputException e = assertThrows(BadInputException.class, () -> write(out, false));
        assertTrue(e.getMessage().contains("--force"), e.getMessage());
        assertTrue(Files.exists(out.resolve("keep.txt")), "untouched");
        write(out, true);
        assertFalse(Files.exists(out.resolve("keep.txt")), "replaced");
        assertTrue(Files.exists(out.resolve("model.safetensors")));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList(), "no temporary or old folder left");
        }
    }

    @Test
    void aFailureWhileWritingLeavesNoOutputAndNoTemporaryFolder(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("q");
        CompressedModelWriter.Hook crash = t -> {
            assertTrue(Files.exists(t.resolve("model.safetensors")), "the hook runs with the folder written");
            throw new IOException("injected failure");
        };
        QuantizationConfig qc = CompressedModelWriter.quantizationConfig(source, options, results);
        IOException e = assertThrows(IOException.class,
                () -> CompressedModelWriter.write(source, results, qc, report(), out, false, crash));
        assertEquals("injected failure", e.getMessage());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(), s.toList(), "nothing left behind");
        }
        // With --force over an existing folder, a failure keeps the old folder.
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "old");
        assertThrows(IOException.class, () -> CompressedModelWriter.write(source, results, qc, report(), out, true, crash));
        assertEquals("old", Files.readString(out.resolve("keep.txt")));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(out), s.toList());
        }
    }
}
