package casp.model;

import casp.io.ModelConfig;
import casp.io.SafeTensorsWriter;
import casp.io.WeightStore;
import casp.kernel.RandomizedSvd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One CLIP ViT-L/14-336 encoder layer (LLaVA-1.5's vision tower: 577 tokens, hidden 1024, 16
 * heads, MLP 4096, quick GELU) with its patch embedding, on random weights stored as F16 like the
 * released checkpoints (so the linears run as 16-bit {@link HalfLinear}s): the tower's
 * hidden state 1 for one image. The one-layer folder is written to a temporary directory, loaded,
 * and deleted.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx6g"})
public class ClipLayerBenchmark {
    static final ModelConfig.VisionConfig CONFIG =
            new ModelConfig.VisionConfig(1024, 336, 14, 3, 1, 16, 4096, "quick_gelu", 1e-5f);

    ClipVisionModel tower;
    float[] pixels;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        int h = CONFIG.hiddenSize(), inter = CONFIG.intermediateSize(), p = CONFIG.patchSize(), c = CONFIG.numChannels();
        int tokens = CONFIG.numPatches() + 1;
        Path dir = Files.createTempDirectory("casp-bench-clip");
        Path file = dir.resolve("model.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        long[] seed = {1};
        String e = "embeddings.";
        w.addF16(e + "patch_embedding.weight", new long[]{h, c, p, p}, random(h, c * p * p, seed, 0.02f));
        w.addFloats(e + "class_embedding", new long[]{h}, random(1, h, seed, 0.02f));
        w.addFloats(e + "position_embedding.weight", new long[]{tokens, h}, random(tokens, h, seed, 0.02f));
        w.addFloats("pre_layrnorm.weight", new long[]{h}, ones(h));
        w.addFloats("pre_layrnorm.bias", new long[]{h}, new float[h]);
        String l = "encoder.layers.0.";
        for (String norm : new String[]{"layer_norm1", "layer_norm2"}) {
            w.addFloats(l + norm + ".weight", new long[]{h}, ones(h));
            w.addFloats(l + norm + ".bias", new long[]{h}, new float[h]);
        }
        for (String proj : new String[]{"q_proj", "k_proj", "v_proj", "out_proj"}) {
            w.addF16(l + "self_attn." + proj + ".weight", new long[]{h, h}, random(h, h, seed, 0.03f));
            w.addFloats(l + "self_attn." + proj + ".bias", new long[]{h}, new float[h]);
        }
        w.addF16(l + "mlp.fc1.weight", new long[]{inter, h}, random(inter, h, seed, 0.03f));
        w.addFloats(l + "mlp.fc1.bias", new long[]{inter}, new float[inter]);
        w.addF16(l + "mlp.fc2.weight", new long[]{h, inter}, random(h, inter, seed, 0.015f));
        w.addFloats(l + "mlp.fc2.bias", new long[]{h}, new float[h]);
        w.write(file);
        try {
            tower = ClipVisionModel.load(WeightStore.open(dir), "", CONFIG);
        } finally {
            Files.delete(file); // the mapping stays valid on Linux once loaded
            Files.delete(dir);
        }
        pixels = random(1, c * CONFIG.imageSize() * CONFIG.imageSize(), seed, 1f);
    }

    static float[] random(int rows, int cols, long[] seed, float scale) {
        float[] a = RandomizedSvd.gaussianMatrix(rows, cols, seed[0]++);
        for (int i = 0; i < a.length; i++) a[i] *= scale;
        return a;
    }

    static float[] ones(int n) {
        float[] a = new float[n];
        Arrays.fill(a, 1f);
        return a;
    }

    @Benchmark
    public float[] layer() {
        return tower.hiddenState(pixels, 1);
    }
}
