package casp.model;

import casp.TestData;
import casp.io.LlavaDataset;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.io.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** LLaVA end to end against the reference parity samples of both test models. */
class LlavaModelTest {

    private static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }

    /** Checks ids, final logits (1e-3) and greedy tokens; returns how many samples were checked. */
    static int checkParity(String name, List<String> stop) throws Exception {
        Path root = TestData.shared("models/" + name);
        LlavaModel m = LlavaModel.load(root.resolve("model"));
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        JsonNode samples = new ObjectMapper().readTree(root.resolve("reference/parity_samples.json").toFile()).get("samples");
        int n = 0;
        for (JsonNode s : samples) {
            LlavaDataset.Sample d = dev.get(s.get("dev_index").asInt());
            assertEquals(s.get("id").asText(), d.id());
            assertEquals(root.resolve(s.get("image").asText()), d.image());
            int[] ids = m.promptIds(d.messages(false), true);
            assertArrayEquals(ints(s.get("input_ids")), ids, name + " " + d.id() + " input ids");
            List<float[]> images = List.of(m.encodeImage(d.image()));
            float[] logits = m.forward(ids, images, false);
            JsonNode want = s.get("final_position_logits");
            assertEquals(want.size(), logits.length);
            double maxDiff = 0;
            for (int i = 0; i < logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want.get(i).asDouble() - logits[i]));
            assertTrue(maxDiff <= 1e-3, name + " " + d.id() + " max |dlogit| " + maxDiff);
            LlavaModel.Answer a = m.generate(ids, images, 48, stop);
            assertArrayEquals(ints(s.get("greedy_token_ids")), a.ids(), name + " " + d.id() + " greedy ids");
            String text = s.has("greedy_answer") ? s.get("greedy_answer").asText() : s.get("greedy_text").asText();
            assertEquals(text, a.text());
            n++;
        }
        return n;
    }

    @Test
    void tinyLlavaParity() throws Exception {
        assertEquals(3, checkParity("tiny-llava", List.of()));
    }

    @Test
    void llavaStoriesParity() throws Exception {
        // Its reference decoding stops after the first token whose text contains '.'.
        assertEquals(3, checkParity("llava-stories", List.of(".")));
    }

    /** The newer transformers names (model.language_model.*, model.vision_tower.*, ...) load to the same model. */
    @Test
    void newerTensorNamesGiveIdenticalLogits(@TempDir Path tmp) throws Exception {
        Path src = TestData.model("tiny-llava");
        try (var files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator)
                if (!f.getFileName().toString().equals("model.safetensors")) Files.copy(f, tmp.resolve(f.getFileName()));
        }
        SafeTensorsFile in = SafeTensorsFile.open(src.resolve("model.safetensors"));
        SafeTensorsWriter w = new SafeTensorsWriter();
        int renamed = 0;
        for (String name : in.tensors().keySet()) {
            String to = name.startsWith("language_model.model.") ? "model.language_model." + name.substring("language_model.model.".length())
                    : name.equals("language_model.lm_head.weight") ? "lm_head.weight"
                    : name.startsWith("vision_tower.") || name.startsWith("multi_modal_projector.") ? "model." + name
                    : null;
            assertNotNull(to, "unexpected tensor " + name);
            TensorInfo t = in.info(name);
            w.add(to, t.dtype(), t.shape(), out -> in.copyTo(t, out));
            renamed++;
        }
        assertEquals(in.tensors().size(), renamed);
        w.write(tmp.resolve("model.safetensors"));
        LlavaModel classic = LlavaModel.load(src), newer = LlavaModel.load(tmp);
        assertEquals("model.language_model.", newer.folder().textPrefix());
        assertEquals("model.vision_tower.vision_model.", newer.folder().visionPrefix());
        assertEquals("model.multi_modal_projector.", newer.folder().projectorPrefix());
        assertEquals("lm_head.weight", newer.folder().lmHead());
        Path image = TestData.shared("models/tiny-llava/data/dev/images/img_000003.png");
        var msgs = List.of(new casp.io.ChatTemplate.Message("user",
                List.of(casp.io.ChatTemplate.Part.image(), casp.io.ChatTemplate.Part.text("Describe the image."))));
        int[] ids = classic.promptIds(msgs, true);
        assertArrayEquals(ids, newer.promptIds(msgs, true));
        float[] fa = classic.encodeImage(image), fb = newer.encodeImage(image);
        assertArrayEquals(fa, fb); // vision kernels are deterministic bit for bit
        // Every language-model tensor is the same data under the new name.
        for (String name : in.tensors().keySet()) {
            if (!name.startsWith("language_model.")) continue;
            String suffix = name.startsWith("language_model.model.") ? name.substring("language_model.model.".length()) : null;
            String to = suffix != null ? newer.folder().textPrefix() + suffix : newer.folder().lmHead();
            assertArrayEquals(classic.folder().weights().floats(name), newer.folder().weights().floats(to), name);
        }
        float[] a = classic.forward(ids, List.of(fa), true);
        float[] b = newer.forward(ids, List.of(fb), true);
        float[] a2 = classic.forward(ids, List.of(fa), true);
        assertEquals(ids.length * 448, a.length);
        // The decoder's softmax/SiLU use the Vector API's exp, which changes by one ulp when C2
        // compiles it (Math.exp interpreted, SVML compiled): even the same model run twice may
        // differ in the last bits, so "identical" here is to 1e-5 relative.
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i], b[i], 1e-5 * (1 + Math.abs(a[i])), "logit " + i);
            assertEquals(a[i], a2[i], 1e-5 * (1 + Math.abs(a[i])), "logit " + i + " (same model twice)");
        }
    }
}
