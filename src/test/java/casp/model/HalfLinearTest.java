package casp.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import casp.TestData;
import casp.io.ModelFolder;
import casp.tensor.DType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Folders whose token embeddings and output head are stored as F16 keep them in 16 bits (the head a
 * {@link HalfLinear}) and give the logits of the same folder with those tensors stored as the
 * fp16-rounded floats: an untied head (tiny-llava) and a tied one (stories260K).
 */
class HalfLinearTest {
    @TempDir
    Path tmp;

    @Test
    void untiedF16HeadAndEmbeddings() throws IOException {
        compare(TestData.model("tiny-llava"));
    }

    @Test
    void tiedF16Embeddings() throws IOException {
        compare(TestData.model("stories260K"));
    }

    /** The vision tower's linears stored as F16 give the image features of the fp16-rounded F32 tower. */
    @Test
    void f16VisionTowerLinears() throws IOException {
        Path src = TestData.model("tiny-llava");
        ModelFolder original = ModelFolder.open(src);
        Set<String> names = new java.util.HashSet<>();
        for (String n : original.weights().names()) {
            if (n.startsWith(original.visionPrefix() + "encoder.") && n.endsWith(".weight")
                    && (n.contains("_proj.") || n.contains(".fc1.") || n.contains(".fc2."))) names.add(n);
        }
        assertEquals(6 * original.config().vision().numLayers(), names.size(), "q, k, v, out, fc1, fc2 per layer");
        Path f16 = rewrite(src, names, true);
        String fc1 = original.visionPrefix() + "encoder.layers.0.mlp.fc1.weight";
        int h = original.config().vision().hiddenSize(), inter = original.config().vision().intermediateSize();
        assertInstanceOf(HalfLinear.class, HalfLinear.load(ModelFolder.open(f16).weights(), fc1, h, inter, null));
        assertInstanceOf(DenseLinear.class, HalfLinear.load(original.weights(), fc1, h, inter, null));
        LlavaModel half = LlavaModel.load(f16);
        LlavaModel rounded = LlavaModel.load(rewrite(src, names, false));
        Path image = TestData.shared("models/tiny-llava/data/dev/images/img_000003.png");
        float[] a = half.encodeImage(image), b = rounded.encodeImage(image);
        assertEquals(b.length, a.length);
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4f * (1 + Math.abs(b[i])), "image feature " + i);
    }

    private void compare(Path src) throws IOException {
        ModelFolder original = ModelFolder.open(src);
        Set<String> names = new java.util.HashSet<>(java.util.List.of(original.textPrefix() + "embed_tokens.weight", original.lmHead())); // one name when tied
        LlamaModel half = LlamaModel.load(ModelFolder.open(rewrite(src, names, true)));
        LlamaModel rounded = LlamaModel.load(ModelFolder.open(rewrite(src, names, false)));
        assertInstanceOf(HalfLinear.class, half.lmHead());
        assertInstanceOf(DenseLinear.class, rounded.lmHead());

        int[] ids = {1, 5, 17, 2, 40, 9, 3, 11, 8, 30};
        float[] a = half.forward(ids, half.newCache(32), true); // all positions: the head's mat-mat
        float[] b = rounded.forward(ids, rounded.newCache(32), true);
        assertEquals(b.length, a.length);
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4f * (1 + Math.abs(b[i])), src + " logit " + i);
        float[] one = new float[half.vocabSize()], oneRef = new float[half.vocabSize()];
        half.decode(7, half.newCache(4), one); // one position: the head's mat-vec
        rounded.decode(7, rounded.newCache(4), oneRef);
        for (int i = 0; i < one.length; i++) assertEquals(oneRef[i], one[i], 1e-4f * (1 + Math.abs(oneRef[i])), src + " decoded logit " + i);
    }

    /** A copy of the folder with the named tensors as F16 (f16) or as F32 holding the fp16-rounded values. */
    private Path rewrite(Path src, Set<String> names, boolean f16) throws IOException {
        Path dir = HalfFolders.rewrite(src, tmp.resolve(src.getParent().getFileName() + (f16 ? "-f16" : "-rounded")),
                names::contains, DType.F16, f16);
        if (f16) {
            ModelFolder m = ModelFolder.open(dir);
            for (String name : names) assertEquals(DType.F16, m.weights().info(name).dtype(), name);
        }
        return dir;
    }
}
