package casp.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import casp.TestData;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A folder whose untied output head is stored as F16 loads it as a {@link HalfLinear} (16 bits in
 * memory) and gives the logits of the float model with that head rounded to fp16.
 */
class HalfLinearTest {
    @TempDir
    Path tmp;

    @Test
    void f16HeadStaysIn16BitsAndGivesTheRoundedFloatLogits() throws IOException {
        Path src = TestData.model("tiny-llava");
        Path dir = tmp.resolve("tiny-llava-f16-head");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().endsWith(".safetensors")) Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        ModelFolder original = ModelFolder.open(src);
        String head = original.lmHead();
        float[] rounded = null;
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".safetensors"))::iterator) {
                SafeTensorsFile in = SafeTensorsFile.open(f);
                SafeTensorsWriter out = new SafeTensorsWriter();
                for (String name : in.tensors().keySet()) {
                    if (name.equals(head)) {
                        float[] w = in.readFloats(name);
                        out.addF16(name, in.info(name).shape(), w);
                        rounded = w.clone();
                        for (int i = 0; i < w.length; i++) rounded[i] = Fp16.toFloat(Fp16.fromFloat(w[i]));
                    } else {
                        out.copy(in, name);
                    }
                }
                out.write(dir.resolve(f.getFileName()));
            }
        }
        ModelFolder f16 = ModelFolder.open(dir);
        assertEquals(DType.F16, f16.weights().info(head).dtype());
        LlamaModel half = LlamaModel.load(f16);
        assertInstanceOf(HalfLinear.class, half.lmHead());

        LlamaModel reference = LlamaModel.load(original);
        reference.setLmHead(new DenseLinear(reference.hiddenSize(), reference.vocabSize(), rounded, null));
        int[] ids = {1, 5, 17, 2, 40, 9, 3, 11, 8, 30};
        float[] a = half.forward(ids, half.newCache(32), true); // all positions: the head's mat-mat
        float[] b = reference.forward(ids, reference.newCache(32), true);
        assertEquals(b.length, a.length);
        for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4f * (1 + Math.abs(b[i])), "logit " + i);
        float[] one = new float[half.vocabSize()], oneRef = new float[half.vocabSize()];
        half.decode(7, half.newCache(4), one); // one position: the head's mat-vec
        reference.decode(7, reference.newCache(4), oneRef);
        for (int i = 0; i < one.length; i++) assertEquals(oneRef[i], one[i], 1e-4f * (1 + Math.abs(oneRef[i])), "decoded logit " + i);
    }
}
