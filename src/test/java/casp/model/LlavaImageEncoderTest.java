package casp.model;

import casp.io.ModelFolder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import casp.TestData;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Vision tower + projector against the debug checksums of the reference parity samples. */
class LlavaImageEncoderTest {

    static Path shared() {
        return TestData.shared("");
    }

    private static void checkFirst8(JsonNode want, float[] got, double tol, String what) {
        for (int i = 0; i < 8; i++) assertEquals(want.get(i).asDouble(), got[i], tol, what + "[" + i + "]");
    }

    private static double[] meanStd(float[] x) {
        double m = 0, v = 0;
        for (float f : x) m += f;
        m /= x.length;
        for (float f : x) v += (f - m) * (f - m);
        return new double[]{m, Math.sqrt(v / (x.length - 1))};
    }

    private void checkModel(String name) throws Exception {
        Path root = shared().resolve("models").resolve(name);
        ModelFolder folder = ModelFolder.open(root.resolve("model"));
        LlavaImageEncoder enc = LlavaImageEncoder.load(folder);
        assertEquals(64, enc.tokensPerImage());
        JsonNode samples = new ObjectMapper().readTree(root.resolve("reference/parity_samples.json").toFile()).get("samples");
        assertEquals(3, samples.size());
        for (JsonNode s : samples) {
            JsonNode dbg = s.get("debug");
            float[] px = enc.preprocessor().process(root.resolve(s.get("image").asText()));
            double sum = 0;
            for (float v : px) sum += v;
            assertEquals(dbg.get("pixel_values_sum").asDouble(), sum, 1e-2, "pixel sum");
            float[] feat = enc.selectedFeatures(px);
            assertEquals(64 * 128, feat.length);
            checkFirst8(dbg.get("vision_selected_feature_first8"), feat, 2e-4, name + " feature");
            if (dbg.has("vision_selected_feature_mean")) {
                double[] ms = meanStd(feat);
                assertEquals(dbg.get("vision_selected_feature_mean").asDouble(), ms[0], 1e-4);
                assertEquals(dbg.get("vision_selected_feature_std").asDouble(), ms[1], 1e-4);
            }
            float[] proj = enc.encode(px);
            assertEquals(64 * folder.config().text().hiddenSize(), proj.length);
            checkFirst8(dbg.get("projector_output_first8"), proj, 5e-4, name + " projector");
            double[] ms = meanStd(proj);
            assertEquals(dbg.get("projector_output_mean").asDouble(), ms[0], 1e-4);
            assertEquals(dbg.get("projector_output_std").asDouble(), ms[1], 1e-3);
            if (dbg.has("vision_post_layernorm_of_last_layer_first8")) {
                float[] last = enc.tower().hiddenState(px, -1);
                checkFirst8(dbg.get("vision_post_layernorm_of_last_layer_first8"), enc.tower().postLayerNorm(last), 1e-4,
                        name + " post_layernorm");
            }
        }
    }

    @Test
    void tinyLlavaVisionMatchesReference() throws Exception {
        checkModel("tiny-llava");
    }

    @Test
    void llavaStoriesVisionMatchesReference() throws Exception {
        checkModel("llava-stories");
    }

    /** Same computation twice; the JIT may switch exp between the Java fallback and the intrinsic (1 ulp). */
    private static void assertClose(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-5 * (1 + Math.abs(want[i])), "index " + i);
    }

    @Test
    void hiddenStatesAgreeWithSingleStateAndFullStrategyKeepsClass() throws Exception {
        ModelFolder folder = ModelFolder.open(shared().resolve("models/tiny-llava/model"));
        LlavaImageEncoder enc = LlavaImageEncoder.load(folder);
        float[] px = enc.preprocessor().process(shared().resolve("models/tiny-llava/data/dev/images/img_000000.png"));
        float[][] all = enc.tower().hiddenStates(px);
        assertEquals(5, all.length);
        assertClose(all[3], enc.tower().hiddenState(px, -2));
        assertClose(all[0], enc.tower().hiddenState(px, 0));
        assertClose(all[4], enc.tower().hiddenState(px, -1));
        var s = folder.config().llava();
        var full = new LlavaImageEncoder(enc.preprocessor(), enc.tower(), enc.projector(),
                new casp.io.ModelConfig.LlavaSettings(s.imageTokenIndex(), s.visionFeatureLayer(), "full",
                        s.projectorAct(), s.projectorBias(), 65));
        assertEquals(65, full.tokensPerImage());
        float[] f = full.selectedFeatures(px), d = enc.selectedFeatures(px);
        assertEquals(65 * 128, f.length);
        for (int i = 0; i < d.length; i++) assertEquals(d[i], f[i + 128], 1e-5 * (1 + Math.abs(d[i])));
    }
}
