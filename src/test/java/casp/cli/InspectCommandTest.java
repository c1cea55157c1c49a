package casp.cli;

import casp.TestData;
import casp.io.SafeTensorsWriter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class InspectCommandTest {
    @TempDir
    Path tmp;

    @Test
    void stories260KParameterCount() throws Exception {
        CliRunner.Result r = CliRunner.run("inspect", TestData.model("stories260K").toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(260_032, j.get("parameters").asLong()); // the model card's count
        assertEquals(5, j.path("language_model").path("layers").asInt());
        assertEquals(4, j.path("language_model").path("kv_heads").asInt());
    }

    @Test
    void tinyLlavaComponentsCountedSeparately() throws Exception {
        CliRunner.Result r = CliRunner.run("inspect", TestData.model("tiny-llava").toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(4_319_232, j.get("parameters").asLong()); // from the model's README
        JsonNode c = j.get("parameters_by_component");
        // Sums of the tensor shapes in reference/tensor_shapes.json, by component.
        long vision = 0, projector = 0, lm = 0;
        JsonNode shapes = new ObjectMapper().readTree(TestData.shared("models/tiny-llava/reference/tensor_shapes.json").toFile());
        for (var it = shapes.fields(); it.hasNext(); ) {
            var e = it.next();
            JsonNode shape = e.getValue().isArray() ? e.getValue() : e.getValue().get("shape");
            long n = 1;
            for (JsonNode d : shape) n *= d.asLong();
            if (e.getKey().startsWith("vision_tower.")) vision += n;
            else if (e.getKey().startsWith("multi_modal_projector.")) projector += n;
            else lm += n;
        }
        assertEquals(vision, c.get("vision_tower").asLong());
        assertEquals(projector, c.get("projector").asLong());
        assertEquals(lm, c.get("language_model").asLong());
        assertEquals(vision + projector + lm, j.get("parameters").asLong());
    }

    private Path modelDir(String name, String config) throws Exception {
        Path d = Files.createDirectory(tmp.resolve(name));
        Files.writeString(d.resolve("config.json"), config);
        return d;
    }

    private static final String LLAMA = "{\"model_type\":\"llama\",\"hidden_size\":4,\"intermediate_size\":8,"
            + "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":5,\"tie_word_embeddings\":true}";

    private void assertExit2Naming(Path file, String... args) {
        CliRunner.Result r = CliRunner.run(args);
        assertEquals(2, r.exitCode(), "exit code; stderr: " + r.err());
        assertTrue(r.err().contains(file.toString()), "message names " + file + ": " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertTrue(r.out().isEmpty(), "nothing on stdout");
    }

    @Test
    void unsupportedArchitecture() throws Exception {
        Path d = modelDir("bert", "{\"model_type\":\"bert\",\"hidden_size\":4}");
        assertExit2Naming(d.resolve("config.json"), "inspect", d.toString());
    }

    @Test
    void malformedSafetensorsCasesExit2NamingTheFile() throws Exception {
        String[][] cases = {
                {"truncated", null},
                {"pastEnd", "{}"},
                {"badJson", "{\"a\": "},
                {"badDtype", "{\"a\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,4]}}"},
                {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"},
                {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"},
                {"pastData", "{\"a\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[0,64]}}"},
                {"shapeMismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}"},
        };
        for (String[] c : cases) {
            Path d = modelDir(c[0], LLAMA);
            Path f = d.resolve("model.safetensors");
            if (c[1] == null) {
                Files.write(f, new byte[]{9, 0, 0});
            } else {
                byte[] h = c[1].getBytes(StandardCharsets.UTF_8);
                long len = c[0].equals("pastEnd") ? 1 << 20 : h.length;
                int data = c[0].equals("gap") ? 8 : 4;
                ByteBuffer b = ByteBuffer.allocate(8 + h.length + data).order(ByteOrder.LITTLE_ENDIAN).putLong(len).put(h);
                Files.write(f, b.array());
            }
            assertExit2Naming(f, "inspect", d.toString());
        }
    }

    @Test
    void missingShardExit2() throws Exception {
        Path d = modelDir("shards", LLAMA);
        new SafeTensorsWriter().addFloats("model.embed_tokens.weight", new long[]{5, 4}, new float[20])
                .write(d.resolve("model-1.safetensors"));
        Files.writeString(d.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"model.embed_tokens.weight\":\"model-1.safetensors\",\"model.norm.weight\":\"model-2.safetensors\"}}");
        assertExit2Naming(d.resolve("model.safetensors.index.json"), "inspect", d.toString());
    }

    @Test
    void missingFolderExit2() {
        Path d = tmp.resolve("nope");
        assertExit2Naming(d, "inspect", d.toString());
    }
}
