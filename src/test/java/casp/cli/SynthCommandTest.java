package casp.cli;

import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.TensorInfo;
import casp.io.Tokenizer;
import casp.io.WeightStore;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp synth` on a narrow LLaVA config: a sharded folder that loads, tokenizes and generates. */
class SynthCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static final String TINY_LLAVA = """
            {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "image_token_index": 1000,
             "pad_token_id": 1001, "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
             "projector_hidden_act": "gelu", "tie_word_embeddings": false, "torch_dtype": "float16",
             "text_config": {"model_type": "llama", "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 96,
               "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
               "rms_norm_eps": 1e-05, "initializer_range": 0.05},
             "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "image_size": 28, "patch_size": 14,
               "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 48, "initializer_range": 0.02}}""";

    static Path config(Path dir) throws Exception {
        Path c = dir.resolve("config-in.json");
        Files.writeString(c, TINY_LLAVA);
        return c;
    }

    @Test
    void shardedBf16TwinLoadsAndGenerates(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("twin");
        CliRunner.Result r = CliRunner.run("synth", "--config", config(dir).toString(), "--out", out.toString(),
                "--layers", "2", "--dtype", "bf16", "--max-shard-size", "40KB", "--seed", "3");
        assertEquals(0, r.exitCode(), r.err());
        for (String f : new String[]{"config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "model.safetensors.index.json"})
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(2, s.count(), "only the input config and the twin: no temporary files left");
        }
        JsonNode index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
        ModelFolder folder = ModelFolder.open(out);
        assertEquals(2, folder.config().text().numLayers());
        WeightStore w = folder.weights();
        long bytes = 0;
        int shards = 0;
        for (String name : w.names()) {
            TensorInfo t = w.info(name);
            assertEquals(DType.BF16, t.dtype(), name);
            bytes += t.byteSize();
        }
        try (Stream<Path> s = Files.list(out)) {
            for (Path p : s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).toList()) {
                shards++;
                assertTrue(p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"), p.toString());
                SafeTensorsFile f = SafeTensorsFile.open(p);
                assertTrue(Files.size(p) <= 40_000 || f.tensors().size() == 1, p + " is larger than a shard");
            }
        }
        assertTrue(shards > 1, "sharded");
        assertEquals(bytes, index.get("metadata").get("total_size").asLong());
        assertEquals(w.names().size(), index.get("weight_map").size());

        // weights ~ normal(0, initializer_range), norm scales 1
        float[] gate = w.floats("language_model.model.layers.1.mlp.gate_proj.weight");
        double sum = 0, sq = 0;
        for (float v : gate) { sum += v; sq += v * v; }
        double mean = sum / gate.length, std = Math.sqrt(sq / gate.length - mean * mean);
        assertEquals(0.05, std, 0.05 * 0.05, "std of " + gate.length + " values");
        assertEquals(0, mean, 0.005);
        for (float v : w.floats("language_model.model.layers.0.input_layernorm.weight")) assertEquals(1f, v);

        Tokenizer tok = Tokenizer.load(out);
        String text = "Shape twins: wörld ✓ 42!";
        int[] ids = tok.encode(text, false);
        assertEquals(text, tok.decode(ids));
        assertTrue(ids.length < text.length(), "merges shorten the text: " + ids.length);
        assertEquals(1000, tok.tokenId("<image>").getAsInt());

        Path image = Path.of("testdata/tiny-llava/data/dev/images/img_000000.png");
        CliRunner.Result g = CliRunner.run("generate", "--model", out.toString(), "--image", image.toString(),
                "--prompt", "What is it?", "--max-tokens", "3", "--json");
        assertEquals(0, g.exitCode(), g.err());
        assertEquals(3, JSON.readTree(g.out()).get("ids").size());
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes(@TempDir Path dir) throws Exception {
        Path c = config(dir);
        for (String[] run : new String[][]{{"a", "7"}, {"b", "7"}, {"c", "8"}})
            assertEquals(0, CliRunner.run("synth", "--config", c.toString(), "--out", dir.resolve(run[0]).toString(),
                    "--layers", "1", "--seed", run[1]).exitCode());
        byte[] a = Files.readAllBytes(dir.resolve("a/model.safetensors"));
        assertArrayEquals(a, Files.readAllBytes(dir.resolve("b/model.safetensors")));
        assertFalse(java.util.Arrays.equals(a, Files.readAllBytes(dir.resolve("c/model.safetensors"))));
        assertEquals(DType.F16, WeightStore.open(dir.resolve("a")).info("language_model.lm_head.weight").dtype(), "the config's torch_dtype");
    }

    @Test
    void userErrorsAreOneLineAndExitTwo(@TempDir Path dir) throws Exception {
        CliRunner.Result unknown = CliRunner.run("synth", "--like", "llama-9", "--out", dir.resolve("x").toString());
        assertEquals(2, unknown.exitCode());
        assertTrue(unknown.err().contains("--like"), unknown.err());
        CliRunner.Result exists = CliRunner.run("synth", "--config", config(dir).toString(), "--out", dir.toString());
        assertEquals(2, exists.exitCode());
        assertTrue(exists.err().contains("already exists"), exists.err());
        CliRunner.Result dtype = CliRunner.run("synth", "--like", "llama-2-7b", "--dtype", "int4", "--out", dir.resolve("y").toString());
        assertEquals(2, dtype.exitCode());
        assertNotEquals(-1, dtype.err().indexOf("--dtype"));
        assertFalse(Files.exists(dir.resolve("x")) || Files.exists(dir.resolve("y")));
    }
}
