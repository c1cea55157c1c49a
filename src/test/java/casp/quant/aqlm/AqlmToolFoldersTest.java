package casp.quant.aqlm;

import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
import casp.quant.gptq.GptqToolFoldersTest;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Folders laid out as the aqlm package saves a quantized Llama and transformers' "aqlm" method
 * reads it, written here by test code: per linear prefix.codes (int8 for 8-bit codebooks, int16
 * for 16-bit, the code's two's complement), prefix.codebooks fp16 [M, 2^B, out_group_size 1,
 * in_group_size], prefix.scales fp16 [out, 1, 1, 1]; quantization_config with quant_method "aqlm",
 * nbits_per_codebook, num_codebooks, in/out_group_size and linear_weights_not_to_quantize. casp
 * must give the logits of the float model built from the decoded weights within 1e-4.
 */
class AqlmToolFoldersTest {
    @TempDir
    Path tmp;

    static final ModelConfig.TextConfig C = GptqToolFoldersTest.C;

    Path write(String name, int m, int b, int gsize, long seed, Map<String, float[]> reference) throws IOException {
        Map<String, float[]> floats = SyntheticModel.tensors(C, seed);
        SplittableRandom rnd = new SplittableRandom(seed);
        Path dir = tmp.resolve(name);
        Files.createDirectories(dir);
        reference.putAll(floats);
        SafeTensorsWriter st = new SafeTensorsWriter().metadata("format", "pt");
        int k = 1 << b;
        for (String t : floats.keySet()) {
            if (!t.endsWith("_proj.weight")) {
                st.addFloats(t, GptqToolFoldersTest.shape(t), floats.get(t));
                continue;
            }
            String prefix = t.substring(0, t.length() - ".weight".length());
            long[] shape = GptqToolFoldersTest.shape(t);
            int out = (int) shape[0], in = (int) shape[1], groups = in / gsize;
            int[] codes = new int[out * groups * m];
            for (int i = 0; i < codes.length; i++) codes[i] = rnd.nextInt(k);
            float[] cb = new float[m * k * gsize], scales = new float[out];
            double spread = 0.3 / Math.sqrt(in * m);
            for (int i = 0; i < cb.length; i++) cb[i] = Fp16.toFloat(Fp16.fromFloat((float) (spread * rnd.nextGaussian())));
            for (int i = 0; i < out; i++) scales[i] = Fp16.toFloat(Fp16.fromFloat((float) (0.5 + rnd.nextDouble())));
            // the decoded weight, as aqlm's dequantize: sum the M codewords of each group, times the row's scale
            float[] w = new float[out * in];
            for (int r = 0; r < out; r++)
                for (int g = 0; g < groups; g++)
                    for (int i = 0; i < gsize; i++) {
                        float s = 0;
                        for (int c = 0; c < m; c++) s += cb[(c * k + codes[(r * groups + g) * m + c]) * gsize + i];
                        w[r * in + g * gsize + i] = scales[r] * s;
                    }
            reference.put(t, w);
            DType ct = b <= 8 ? DType.I8 : DType.I16;
            st.add(prefix + ".codes", ct, new long[]{out, groups, m}, ch -> {
                ByteBuffer bb = ByteBuffer.allocate(codes.length * ct.bytes()).order(ByteOrder.LITTLE_ENDIAN);
                for (int c : codes) {
                    if (ct == DType.I8) bb.put((byte) c);
                    else bb.putShort((short) c);
                }
                bb.flip();
                while (bb.hasRemaining()) ch.write(bb);
            });
            st.addF16(prefix + ".codebooks", new long[]{m, k, 1, gsize}, cb);
            st.addF16(prefix + ".scales", new long[]{out, 1, 1, 1}, scales);
        }
        st.write(dir.resolve("model.safetensors"));
        Path ref = tmp.resolve(name + "-float");
        SyntheticModel.write(ref, C, reference, DType.F32);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(ref.resolve("config.json").toFile());
        ObjectNode qc = config.putObject("quantization_config");
        qc.put("quant_method", "aqlm");
        qc.put("in_group_size", gsize);
        qc.put("out_group_size", 1);
        qc.put("num_codebooks", m);
        qc.put("nbits_per_codebook", b);
        qc.putArray("linear_weights_not_to_quantize").add("model.embed_tokens.weight").add("lm_head.weight");
        json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config);
        return dir;
    }

    void check(String name, int m, int b, int gsize, long seed) throws IOException {
        Map<String, float[]> reference = new LinkedHashMap<>();
        Path dir = write(name, m, b, gsize, seed, reference);
        LlamaModel q = LlamaModel.load(dir), f = LlamaModel.load(tmp.resolve(name + "-float"));
        int[] ids = GptqToolFoldersTest.randomIds(11, C.vocabSize(), seed);
        float[] got = q.forward(ids, null, true), want = f.forward(ids, null, true);
        double err = 0;
        for (int i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
        assertTrue(err <= 1e-4, name + ": max logit difference " + err);
        // each linear's weight, and the codebook mat-vec (which large layers take) on the same tensors
        ModelFolder folder = ModelFolder.open(dir);
        String p = "model.layers.1.mlp.down_proj";
        AqlmTensors t = AqlmTensors.read(folder.weights(), p, C.hiddenSize(), C.intermediateSize(), m, b, gsize);
        assertArrayEquals(reference.get(p + ".weight"), ((AqlmLinear) q.layer(1).linear(DecoderLayer.DOWN)).dequantize(), 1e-7f, name);
        AqlmLinear byCodebook = AqlmLinear.of(t, C.intermediateSize(), null, AqlmLinear.Mode.CODEBOOK);
        float[] x = new float[C.intermediateSize()], y = new float[C.hiddenSize()], yd = new float[C.hiddenSize()];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i);
        byCodebook.forward(x, 0, y, 0, 1);
        new DenseLinear(C.intermediateSize(), C.hiddenSize(), reference.get(p + ".weight"), null).forward(x, 0, yd, 0, 1);
        for (int i = 0; i < y.length; i++) assertEquals(yd[i], y[i], 1e-5, name + " codebook mat-vec row " + i);
    }

    @Test
    void oneCodebookOf16Bits() throws IOException {
        check("aqlm-1x16", 1, 16, 8, 1);
    }

    @Test
    void exportAsAqlmKeepsTheCodesAndTheLogits() throws IOException {
        Path dir = write("aqlm-2x8-src", 2, 8, 8, 4, new LinkedHashMap<>());
        Path out = tmp.resolve("aqlm-2x8-exported");
        casp.compress.Exporter.Result r = casp.compress.Exporter.export(dir, out, casp.compress.Exporter.Format.AQLM, 0, false);
        assertEquals(0, r.lowRank());
        assertEquals(r.inputBytes(), r.outputBytes(), "nothing to convert: the same tensors");
        com.fasterxml.jackson.databind.JsonNode qc = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("aqlm", qc.get("quant_method").asText());
        assertEquals(2, qc.get("num_codebooks").asInt());
        assertEquals(8, qc.get("nbits_per_codebook").asInt());
        int[] ids = GptqToolFoldersTest.randomIds(9, C.vocabSize(), 4);
        assertArrayEquals(LlamaModel.load(dir).forward(ids, null, true), LlamaModel.load(out).forward(ids, null, true), 0f);
    }

    @Test
    void twoCodebooksOf8Bits() throws IOException {
        check("aqlm-2x8", 2, 8, 8, 2);
    }

    @Test
    void inGroupSize16() throws IOException {
        check("aqlm-1x16-g16", 1, 16, 16, 3);
    }
}
