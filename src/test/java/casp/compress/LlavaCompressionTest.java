package casp.compress;

import casp.TestData;
import casp.eval.KlDivergence;
import casp.eval.VqaEvaluator;
import casp.io.LlavaDataset;
import casp.io.SafeTensorsFile;
import casp.model.LlavaModel;
import casp.quant.gptq.QuantizedLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LLaVA calibration (conversations with images), compression of tiny-llava's language model, KL on VQA answers. */
class LlavaCompressionTest {

    static Path calib() {
        return TestData.file("models/tiny-llava/data/calib/calib.json");
    }

    @Test
    void samplesAreTheMergedInputEmbeddingsOfWholeConversations() {
        LlavaModel m = LlavaModel.load(TestData.model("tiny-llava"));
        Path images = calib().getParent().resolve("images");
        List<LlavaDataset.Sample> data = LlavaDataset.load(calib(), images);
        Calibration c = Calibration.fromLlava(m, calib(), images, 5, 256, 3);
        assertEquals(5, c.size());
        int[] chosen = Calibration.choose(data.size(), 5, 3);
        for (int k = 0; k < 5; k++) {
            LlavaDataset.Sample s = data.get(chosen[k]);
            int[] ids = m.promptIds(s.messages(true), false);
            assertEquals(ids.length, c.sample(k).tokens());
            assertArrayEquals(m.embed(ids, List.of(m.encodeImage(s.image()))), c.sample(k).hidden());
        }
        // Text cut to 4 tokens beside the 64 image tokens.
        Calibration cut = Calibration.fromLlava(m, calib(), images, 2, 4, 3);
        assertEquals(64 + 4, cut.sample(0).tokens());
        int[] ids = m.promptIds(data.get(chosen[0]).messages(true), false);
        float[] want = m.embed(ids, List.of(m.encodeImage(data.get(chosen[0]).image())));
        assertArrayEquals(Arrays.copyOf(want, 68 * m.language().hiddenSize()), cut.sample(0).hidden());

        int[] all = Calibration.choose(10, 20, 1);
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, all);
        int[] some = Calibration.choose(100, 7, 1);
        assertEquals(7, Arrays.stream(some).distinct().count());
        assertTrue(Arrays.equals(some, Calibration.choose(100, 7, 1)));
    }

    @Test
    void compressTinyLlavaKeepsTheVisionTowerAndRunsPacked(@TempDir Path tmp) throws Exception {
        Path src = TestData.model("tiny-llava"), out = tmp.resolve("q");
        CompressionOptions o = new CompressionOptions("gptq", 3, CompressionOptions.AUTO_GROUP, false, false, true, 16, 256, 0, 0.01);
        CompressionRun.Outcome r = CompressionRun.run(new CompressionRun.Request(src, calib(), null, o, out, false, false, true),
                null, new PrintStream(new ByteArrayOutputStream()));
        assertEquals("llava", r.report().get("calibration").get("kind").asText());
        assertEquals(4, r.blocks().size());

        SafeTensorsFile a = SafeTensorsFile.open(src.resolve("model.safetensors")), b = SafeTensorsFile.open(out.resolve("model.safetensors"));
        int copied = 0;
        for (String name : a.tensors().keySet()) {
            if (name.startsWith("vision_tower.") || name.startsWith("multi_modal_projector.") || name.contains("lm_head")) {
                assertArrayEquals(a.readBytes(name), b.readBytes(name), name);
                copied++;
            }
        }
        assertTrue(copied > 50);
        assertTrue(b.tensors().containsKey("language_model.model.layers.3.mlp.down_proj.qweight"));

        LlavaModel ref = LlavaModel.load(src), q = LlavaModel.load(out);
        assertTrue(q.language().layer(0).linear("self_attn.q_proj") instanceof QuantizedLinear);
        List<LlavaDataset.Sample> dev = LlavaDataset.load(TestData.file("models/tiny-llava/data/dev/dev.json"),
                TestData.file("models/tiny-llava/data/dev/images"));
        KlDivergence.Mean self = new KlDivergence.Mean(), vsQ = new KlDivergence.Mean();
        VqaEvaluator.Result rs = VqaEvaluator.evaluate(ref, dev, new VqaEvaluator.Options(6, 32, List.of(),
                KlDivergence.againstReference(ref, self)), null);
        VqaEvaluator.Result rq = VqaEvaluator.evaluate(q, dev, new VqaEvaluator.Options(6, 32, List.of(),
                KlDivergence.againstReference(ref, vsQ)), null);
        assertEquals(rs.answerTokens(), self.count());
        assertEquals(rq.answerTokens(), vsQ.count());
        assertEquals(0.0, self.mean(), 1e-10, "the model against itself");
        assertTrue(vsQ.mean() > 1e-6, "3-bit GPTQ changes the answer distributions: " + vsQ.mean());
    }
}
