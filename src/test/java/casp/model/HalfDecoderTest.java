package casp.model;

import casp.TestData;
import casp.io.ChatTemplate;
import casp.io.ModelFolder;
import casp.io.WeightPlacement;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * tiny-llava with every decoder linear and the projector stored as F16 or BF16 keeps them in 16
 * bits ({@link HalfLinear}) and gives the logits of the same folder holding the 16-bit-rounded
 * values as F32: prefill (all positions, the mat-mat), decoding (the mat-vec) and an image prompt
 * (the projector).
 */
class HalfDecoderTest {
    @TempDir
    Path tmp;

    @Test
    void f16DecoderLinearsAndProjector() throws IOException {
        compare(DType.F16);
    }

    @Test
    void bf16DecoderLinearsAndProjector() throws IOException {
        compare(DType.BF16);
    }

    private static boolean sixteenBit(ModelFolder m, String name) {
        return name.startsWith(m.textPrefix() + "layers.") && name.endsWith("_proj.weight")
                || name.startsWith(m.projectorPrefix()) && name.endsWith(".weight");
    }

    private void compare(DType dtype) throws IOException {
        Path src = TestData.model("tiny-llava");
        ModelFolder original = ModelFolder.open(src);
        Path half = HalfFolders.rewrite(src, tmp.resolve(dtype + "-half"), n -> sixteenBit(original, n), dtype, true);
        Path rounded = HalfFolders.rewrite(src, tmp.resolve(dtype + "-rounded"), n -> sixteenBit(original, n), dtype, false);
        ModelFolder halfFolder = ModelFolder.open(half);
        for (String name : halfFolder.weights().names())
            if (sixteenBit(halfFolder, name)) assertEquals(dtype, halfFolder.weights().info(name).dtype(), name);

        LlavaModel a = LlavaModel.load(halfFolder), b = LlavaModel.load(rounded);
        LlamaModel ta = a.language(), tb = b.language();
        for (DecoderLayer layer : ta.layers())
            for (String name : DecoderLayer.LINEARS) assertInstanceOf(HalfLinear.class, layer.linear(name), layer.index() + " " + name);
        for (String name : DecoderLayer.LINEARS) assertInstanceOf(DenseLinear.class, tb.layer(0).linear(name));

        // widening for the quantizers gives exactly the rounded float weights
        assertArrayEquals(((DenseLinear) tb.layer(1).linear(DecoderLayer.DOWN)).weight(),
                HalfLinear.dense(ta.layer(1).linear(DecoderLayer.DOWN)).weight());

        int[] ids = {1, 5, 17, 2, 40, 9, 3, 11, 8, 30, 77, 100, 6};
        close(tb.forward(ids, tb.newCache(32), true), ta.forward(ids, ta.newCache(32), true), "prefill logit");
        float[] one = new float[ta.vocabSize()], oneRef = new float[tb.vocabSize()];
        KvCache ca = ta.newCache(8), cb = tb.newCache(8);
        for (int id : new int[]{1, 7, 19}) {
            ta.decode(id, ca, one);
            tb.decode(id, cb, oneRef);
        }
        close(oneRef, one, "decoded logit");

        // the same weights copied into the heap: the kernels' array loads give the same bits as their buffer loads
        LlavaModel h = LlavaModel.load(halfFolder.placed(WeightPlacement.HEAP));
        LlamaModel th = h.language();
        assertEquals(WeightPlacement.MAP, halfFolder.weights().placement());
        assertTrue(((HalfLinear) ta.layer(0).linear(DecoderLayer.Q)).weight().isMapped());
        assertFalse(((HalfLinear) th.layer(0).linear(DecoderLayer.Q)).weight().isMapped());
        assertArrayEquals(ta.forward(ids, ta.newCache(32), true), th.forward(ids, th.newCache(32), true), "prefill, heap vs mapped");
        float[] oneHeap = new float[th.vocabSize()];
        KvCache ch = th.newCache(8);
        for (int id : new int[]{1, 7, 19}) th.decode(id, ch, oneHeap);
        assertArrayEquals(one, oneHeap, "decoded logits, heap vs mapped");

        Path image = TestData.shared("models/tiny-llava/data/dev/images/img_000003.png");
        int[] prompt = a.promptIds(List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text("What is in the picture?")))), true);
        List<float[]> ia = List.of(a.encodeImage(image)), ib = List.of(b.encodeImage(image));
        close(b.forward(prompt, ib, false), a.forward(prompt, ia, false), "image prompt logit");
        assertArrayEquals(a.forward(prompt, ia, false), h.forward(prompt, List.of(h.encodeImage(image)), false), "image prompt, heap vs mapped");
    }

    private static void close(float[] expected, float[] got, String what) {
        assertEquals(expected.length, got.length);
        for (int i = 0; i < got.length; i++) assertEquals(expected[i], got[i], 1e-4f * (1 + Math.abs(expected[i])), what + " " + i);
    }
}
