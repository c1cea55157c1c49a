package casp.model;

import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.quant.gptq.QuantizedLinear;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tiny random models written to disk with SafeTensorsWriter and checked against {@link NaiveLlama}
 * at awkward sizes: GQA, MQA and MHA, qwen2 q/k/v biases, llama3 rope scaling (all three
 * frequency bands), tied and untied heads, F32/F16/BF16 weights.
 */
class SyntheticModelTest {
    @TempDir
    Path tmp;

    /** head_dim 6 with theta 1e4: wavelengths 6.3, 135, 2920 fall in the high, medium and low bands of this scaling. */
    static final ModelConfig.RopeScaling LLAMA3 = new ModelConfig.RopeScaling("llama3", 8.0, 1.0, 4.0, 256);

    static final ModelConfig.TextConfig QWEN_GQA = SyntheticModel.config("qwen2", 20, 37, 2, 4, 2, 6, 53, 64,
            10000.0, LLAMA3, false);
    static final ModelConfig.TextConfig LLAMA_MHA_TIED = SyntheticModel.config("llama", 16, 40, 3, 2, 2, 8, 31, 64,
            10000.0, null, true);
    static final ModelConfig.TextConfig LLAMA_MQA = SyntheticModel.config("llama", 33, 50, 2, 3, 1, 10, 45, 64,
            500000.0, null, false);

    static int[] randomIds(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }

    ModelFolder write(ModelConfig.TextConfig c, DType dtype, long seed) throws IOException {
        Path dir = tmp.resolve(c.modelType() + "-" + dtype + "-" + seed);
        SyntheticModel.write(dir, c, SyntheticModel.tensors(c, seed), dtype);
        return ModelFolder.open(dir);
    }

    static NaiveLlama naive(ModelFolder f) {
        return new NaiveLlama(f.config().text(), f.weights(), f.textPrefix(), f.lmHead());
    }

    static double maxDiff(float[] got, double[][] expected) {
        int v = expected[0].length;
        double m = 0;
        for (int t = 0; t < expected.length; t++)
            for (int i = 0; i < v; i++) m = Math.max(m, Math.abs(got[t * v + i] - expected[t][i]));
        return m;
    }

    void checkAgainstNaive(ModelConfig.TextConfig c, DType dtype, long seed) throws IOException {
        ModelFolder f = write(c, dtype, seed);
        LlamaModel m = LlamaModel.load(f);
        assertEquals(c.tieWordEmbeddings(), m.headTied());
        int[] ids = randomIds(19, c.vocabSize(), seed + 1);
        double[][] expected = naive(f).forward(ids);
        float[] got = m.forward(ids, null, true);
        double err = maxDiff(got, expected);
        assertTrue(err < 2e-4, c.modelType() + " " + dtype + ": max logit error " + err);
    }

    @Test
    void qwen2GqaWithBiasesLlama3RopeUntiedBf16() throws IOException {
        checkAgainstNaive(QWEN_GQA, DType.BF16, 11);
    }

    @Test
    void llamaMhaTiedF16() throws IOException {
        checkAgainstNaive(LLAMA_MHA_TIED, DType.F16, 12);
    }

    @Test
    void llamaMqaF32() throws IOException {
        checkAgainstNaive(LLAMA_MQA, DType.F32, 13);
    }

    @Test
    void llama3ScalingHitsAllThreeBands() {
        float[] plain = RotaryEmbedding.inverseFrequencies(6, 10000.0, null);
        float[] scaled = RotaryEmbedding.inverseFrequencies(6, 10000.0, LLAMA3);
        assertEquals(plain[0], scaled[0], 0f, "high frequency unchanged");
        assertTrue(scaled[1] < plain[1] && scaled[1] > plain[1] / 8, "medium frequency interpolated");
        assertEquals(plain[2] / 8, scaled[2], 1e-9f, "low frequency divided by the factor");
    }

    @Test
    void kvCacheInChunksMatchesPrefill() throws IOException {
        ModelFolder f = write(QWEN_GQA, DType.F32, 21);
        LlamaModel m = LlamaModel.load(f);
        int[] ids = randomIds(17, QWEN_GQA.vocabSize(), 5);
        int v = m.vocabSize();
        float[] full = m.forward(ids, null, true);
        KvCache cache = m.newCache(20);
        float[] got = new float[ids.length * v];
        float[] a = m.forwardEmbeddings(m.embed(Arrays.copyOfRange(ids, 0, 7)), 7, cache, true);
        System.arraycopy(a, 0, got, 0, a.length);
        float[] b = m.forwardEmbeddings(m.embed(Arrays.copyOfRange(ids, 7, 12)), 5, cache, false);
        System.arraycopy(b, 0, got, 11 * v, v);
        float[] step = new float[v];
        for (int t = 12; t < ids.length; t++) {
            m.decode(ids[t], cache, step);
            System.arraycopy(step, 0, got, t * v, v);
        }
        double err = 0;
        for (int t = 0; t < ids.length; t++) {
            if (t >= 7 && t < 11) continue;   // only the last row of the second chunk was asked for
            for (int i = 0; i < v; i++) err = Math.max(err, Math.abs(got[t * v + i] - full[t * v + i]));
        }
        assertTrue(err < 1e-4, "cached decoding differs by " + err);
        assertThrows(IllegalStateException.class, () -> m.forward(new int[4], cache, false), "cache overflow is refused");
    }

    @Test
    void layerByLayerEqualsFullForwardAndInMemoryEqualsFolder() throws IOException {
        Map<String, float[]> tensors = SyntheticModel.tensors(LLAMA_MQA, 31);
        Path dir = tmp.resolve("mqa");
        SyntheticModel.write(dir, LLAMA_MQA, tensors, DType.F32);
        LlamaModel fromDisk = LlamaModel.load(dir);
        LlamaModel inMemory = LlamaModel.fromTensors(LLAMA_MQA, tensors);
        int[] ids = randomIds(9, LLAMA_MQA.vocabSize(), 3);
        float[] full = fromDisk.forward(ids, null, true);
        assertArrayEquals(full, inMemory.forward(ids, null, true));
        float[] h = inMemory.embed(ids);
        for (DecoderLayer layer : inMemory.layers()) layer.forward(h, ids.length, 0, null, ForwardHooks.NONE);
        float[] logits = new float[ids.length * inMemory.vocabSize()];
        inMemory.logits(h, 0, ids.length, logits, 0);
        assertArrayEquals(full, logits);
    }

    /** 13 rows: one attention block on the calling thread; 60 rows: four blocks spread over the pool. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {13, 60})
    void hooksSeeLinearInputsAndAttentionProbabilities(int length) throws IOException {
        ModelFolder f = write(QWEN_GQA, DType.F32, 41);
        LlamaModel m = LlamaModel.load(f);
        int[] ids = randomIds(length, QWEN_GQA.vocabSize(), 8);
        NaiveLlama naive = naive(f);
        double[][] expected = naive.forward(ids);
        int T = ids.length, d = QWEN_GQA.hiddenSize(), H = QWEN_GQA.numHeads();
        List<String> calls = new ArrayList<>();
        double[] worst = {0, 0, 0};   // q/k/v input error, probability error, causal-zero violation
        ForwardHooks hooks = new ForwardHooks() {
            @Override
            public void linearInput(int layer, List<String> names, float[] x, int rows, int cols) {
                calls.add(layer + ":" + names + ":" + rows + "x" + cols);
                if (names.equals(DecoderLayer.QKV))
                    for (int t = 0; t < rows; t++)
                        for (int i = 0; i < cols; i++)
                            worst[0] = Math.max(worst[0], Math.abs(x[t * cols + i] - naive.qkvInput[layer][t][i]));
            }

            @Override
            public boolean wantsAttention(int layer) {
                return layer == 1;
            }

            @Override
            public void attentionProbs(int layer, int head, float[] probs, int rows, int keys, int startPos) {
                calls.add(layer + ":probs" + head + ":" + rows + "x" + keys + "@" + startPos);
                for (int t = 0; t < rows; t++)
                    for (int j = 0; j < keys; j++) {
                        double e = naive.probs[layer][head][t][j];
                        if (j > t) worst[2] = Math.max(worst[2], Math.abs(probs[t * keys + j]));
                        else worst[1] = Math.max(worst[1], Math.abs(probs[t * keys + j] - e));
                    }
            }
        };
        float[] got = m.forwardEmbeddings(m.embed(ids), T, null, true, hooks);
        assertTrue(maxDiff(got, expected) < 2e-4, "hooks do not change the result");
        List<String> want = new ArrayList<>();
        for (int l = 0; l < 2; l++) {
            want.add(l + ":" + DecoderLayer.QKV + ":" + T + "x" + d);
            if (l == 1) for (int h = 0; h < H; h++) want.add(l + ":probs" + h + ":" + T + "x" + T + "@0");
            want.add(l + ":" + DecoderLayer.O_IN + ":" + T + "x" + QWEN_GQA.qDim());
            want.add(l + ":" + DecoderLayer.GATE_UP + ":" + T + "x" + d);
            want.add(l + ":" + DecoderLayer.DOWN_IN + ":" + T + "x" + QWEN_GQA.intermediateSize());
        }
        assertEquals(want, calls);
        assertTrue(worst[0] < 1e-5, "q/k/v input error " + worst[0]);
        assertTrue(worst[1] < 1e-5, "attention probability error " + worst[1]);
        assertEquals(0.0, worst[2], "probabilities above the diagonal are zero");
    }

    /** A linear that outputs zeros, to check replacement and in-place input edits. */
    record Zero(int in, int out) implements Linear {
        public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
            Arrays.fill(y, yOff, yOff + rows * out, 0f);
        }
    }

    @Test
    void hookEditsAndReplacedLinearsTakeEffect() throws IOException {
        ModelFolder f = write(QWEN_GQA, DType.F32, 51);
        int[] ids = randomIds(6, QWEN_GQA.vocabSize(), 9);
        // Zeroing down_proj's input in layer 1 through the hook ...
        LlamaModel a = LlamaModel.load(f);
        float[] base = a.forward(ids, null, true);
        float[] viaHook = a.forwardEmbeddings(a.embed(ids), ids.length, null, true, new ForwardHooks() {
            @Override
            public void linearInput(int layer, List<String> names, float[] x, int rows, int cols) {
                if (layer == 1 && names.equals(DecoderLayer.DOWN_IN)) Arrays.fill(x, 0, rows * cols, 0f);
            }
        });
        // ... equals replacing layer 1's down_proj by zeros (no bias on down_proj).
        LlamaModel b = LlamaModel.load(f);
        Linear down = b.layer(1).linear(DecoderLayer.DOWN);
        b.layer(1).setLinear(DecoderLayer.DOWN, new Zero(down.in(), down.out()));
        float[] viaReplace = b.forward(ids, null, true);
        assertArrayEquals(viaReplace, viaHook);
        assertTrue(maxAbsDiff(base, viaHook) > 1e-3, "the edit changed the output");
        assertThrows(IllegalArgumentException.class, () -> b.layer(0).setLinear(DecoderLayer.Q, new Zero(down.in(), down.out())));
        assertThrows(IllegalArgumentException.class, () -> b.layer(0).linear("self_attn.x_proj"));
        assertEquals(DecoderLayer.LINEARS, new ArrayList<>(b.layer(0).linears().keySet()));
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    @Test
    void samplingIsSeededAndGreedyIsArgmax() {
        LlamaModel m = SyntheticModel.create(LLAMA_MHA_TIED, 61);
        Generator g = new Generator(m);
        int[] prompt = {1, 5, 7};
        int[] s1 = g.generate(prompt, 20, new Sampler(1.0f, 42), null, null);
        int[] s2 = g.generate(prompt, 20, new Sampler(1.0f, 42), null, null);
        assertArrayEquals(s1, s2);
        assertEquals(20, s1.length);
        // Greedy: each token is the argmax of a full forward pass over everything before it.
        int[] greedy = g.generate(prompt, 6, Sampler.greedy(), null, null);
        int[] seq = Arrays.copyOf(prompt, prompt.length);
        for (int id : greedy) {
            float[] logits = m.forward(seq, null, false);
            int best = 0;
            for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
            assertEquals(best, id);
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = id;
        }
        // Stops at eos (included) and when the callback says so; never past max positions.
        int eos = greedy[2];
        int[] stopped = g.generate(prompt, 6, Sampler.greedy(), new int[]{eos}, null);
        assertArrayEquals(Arrays.copyOf(greedy, indexOf(greedy, eos) + 1), stopped);
        assertArrayEquals(new int[]{greedy[0]}, g.generate(prompt, 6, Sampler.greedy(), null, id -> false));
        assertEquals(LLAMA_MHA_TIED.maxPositions() - prompt.length, g.generate(prompt, 1000, Sampler.greedy(), null, null).length);
    }

    /**
     * The quantized synthetic model (random packed linears) computes what the same model with the
     * dequantized weights as float linears computes: the runtime's dequantizing mat-vec and mat-mat
     * against the dense path, biases (qwen2) included.
     */
    @Test
    void quantizedSyntheticModelMatchesItsDequantizedTwin() {
        for (ModelConfig.TextConfig c : new ModelConfig.TextConfig[] {
                SyntheticModel.config("llama", 32, 48, 2, 2, 1, 16, 40, 64, 10000.0, null, false),
                SyntheticModel.config("qwen2", 32, 80, 2, 2, 2, 16, 37, 64, 10000.0, null, true)}) {
            for (int bits : new int[] {2, 4}) {
                LlamaModel q = SyntheticModel.create(c, 5, QuantizedLinear.random(bits, 16, 5));
                LlamaModel dense = SyntheticModel.create(c, 5, QuantizedLinear.random(bits, 16, 5));
                for (int l = 0; l < c.numLayers(); l++) {
                    for (String name : DecoderLayer.LINEARS) {
                        QuantizedLinear ql = (QuantizedLinear) dense.layer(l).linear(name);
                        dense.layer(l).setLinear(name, new DenseLinear(ql.in(), ql.out(), ql.dequantize(), ql.bias()));
                    }
                }
                for (int n : new int[] {3, 9}) { // 3 tokens take the fused mat-vec, 9 the tile + GEMM path
                    int[] ids = randomIds(n, c.vocabSize(), 3);
                    float[] a = q.forward(ids, null, true), b = dense.forward(ids, null, true);
                    double m = 0, scale = 0;
                    for (int i = 0; i < a.length; i++) {
                        assertTrue(Float.isFinite(a[i]), c.modelType() + " " + bits + " bits: logit " + i);
                        m = Math.max(m, Math.abs(a[i] - b[i]));
                        scale = Math.max(scale, Math.abs(b[i]));
                    }
                    assertTrue(m <= 1e-4 * scale + 1e-5, c.modelType() + " " + bits + " bits, " + n + " tokens: max diff " + m + " of " + scale);
                }
            }
        }
    }

    static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        return -1;
    }
}
