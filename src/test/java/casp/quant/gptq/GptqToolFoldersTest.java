package casp.quant.gptq;

import casp.GptqToolLayout;
import casp.io.BadInputException;
import casp.io.ModelConfig;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.model.DecoderLayer;
import casp.model.Linear;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Folders laid out as GPTQModel, AutoGPTQ and transformers write them, produced here by test code
 * from those tools' rules ({@link GptqToolLayout}): random codes, zero points (0 included where the
 * tool can store it) and fp16 scales per linear. casp must give the logits of the float model
 * built from the same weights dequantized (written as F32 .weight tensors) within 1e-4, and each
 * linear's weight bit-exactly.
 */
public class GptqToolFoldersTest {
    @TempDir
    Path tmp;

    public static final ModelConfig.TextConfig C = SyntheticModel.config("llama", 64, 128, 2, 4, 2, 16, 64, 64, 10000.0, null, false);

    /** How one tool lays a folder out. */
    record Layout(String name, boolean v1, boolean autoGptqZeros, int packBits, boolean actOrder, boolean autoGptqFiles,
                  boolean lmHead, Function<String, Integer> bitsOf) {
        /** The layout with a quantized head also mixes widths through dynamic. */
        boolean dynamic() { return lmHead; }
    }

    /** Settings of one linear: bits, or 0 to leave it a float weight. */
    static int dynamicBits(String prefix) {
        if (prefix.endsWith("down_proj")) return 3;
        if (prefix.contains("layers.1.self_attn.k_proj")) return 0; // "-:" excluded
        if (prefix.contains("layers.0.")) return 2;
        return 4;
    }

    Map<String, float[]> reference;

    /** Writes the tool's folder and the float reference beside it; returns the tool's folder. */
    Path write(Layout l, long seed) throws IOException {
        Map<String, float[]> floats = SyntheticModel.tensors(C, seed);
        SplittableRandom rnd = new SplittableRandom(seed);
        Path dir = tmp.resolve(l.name), ref = tmp.resolve(l.name + "-float");
        Files.createDirectories(dir);
        reference = new LinkedHashMap<>(floats);
        SafeTensorsWriter st = new SafeTensorsWriter().metadata("format", "pt");
        List<String> prefixes = new ArrayList<>();
        for (String name : floats.keySet()) {
            boolean linear = name.endsWith("_proj.weight") || l.lmHead && name.equals("lm_head.weight");
            if (!linear || l.bitsOf.apply(name.substring(0, name.length() - 7)) == 0) {
                st.addFloats(name, shape(name), floats.get(name));
                continue;
            }
            String prefix = name.substring(0, name.length() - 7);
            prefixes.add(prefix);
            int bits = l.bitsOf.apply(prefix);
            float[] w = floats.get(name);
            int in = (int) shape(name)[1], out = (int) shape(name)[0], gs = 32, groups = in / gs;
            int[] gIdx = new int[in];
            for (int c = 0; c < in; c++) gIdx[c] = l.actOrder ? ((c * 37 + 11) % in) / gs : c / gs;
            int[][] q = new int[in][out], zeros = new int[groups][out];
            float[][] scales = new float[groups][out];
            for (int g = 0; g < groups; g++)
                for (int r = 0; r < out; r++) {
                    int z = rnd.nextInt(3) == 0 ? 0 : rnd.nextInt(1 << bits);
                    zeros[g][r] = l.autoGptqZeros ? Math.max(1, z) : z;
                    scales[g][r] = Fp16.toFloat(Fp16.fromFloat((float) ((0.5 + rnd.nextDouble()) * 0.25 / (1 << bits)))); // |W| <~ 0.4
                }
            for (int c = 0; c < in; c++) for (int r = 0; r < out; r++) q[c][r] = rnd.nextInt(1 << bits);
            reference.put(name, GptqToolLayout.dequantize(q, zeros, scales, gIdx));
            long[] v2 = GptqToolLayout.packCols(zeros, bits, l.packBits);
            long[] qzeros = l.autoGptqZeros ? GptqToolLayout.autoGptqQzeros(zeros, bits)
                    : l.v1 ? GptqToolLayout.v2ToV1(v2, groups, out, bits, l.packBits) : v2;
            long[] qweight = GptqToolLayout.packRows(q, bits, l.packBits);
            words(st, prefix + ".qweight", qweight, l.packBits, qweight.length / out, out);
            words(st, prefix + ".qzeros", qzeros, l.packBits, groups, qzeros.length / groups);
            float[] sf = new float[groups * out];
            for (int g = 0; g < groups; g++) System.arraycopy(scales[g], 0, sf, g * out, out);
            st.addF16(prefix + ".scales", new long[]{groups, out}, sf);
            st.addInts(prefix + ".g_idx", new long[]{in}, gIdx);
        }
        SyntheticModel.write(ref, C, reference, DType.F32);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(ref.resolve("config.json").toFile());
        ObjectNode qc = json.createObjectNode();
        qc.put("bits", l.bitsOf.apply("model.layers.1.self_attn.q_proj")); // what dynamic does not override
        qc.put("group_size", 32);
        qc.put("desc_act", l.actOrder);
        qc.put("sym", false);
        if (l.autoGptqFiles) {
            qc.put("damp_percent", 0.01);
            qc.put("static_groups", false);
            qc.put("true_sequential", true);
            qc.put("model_name_or_path", (String) null);
            qc.put("model_file_base_name", "gptq_model-4bit-32g");
            json.writeValue(dir.resolve("quantize_config.json").toFile(), qc);
            st.write(dir.resolve("gptq_model-4bit-32g.safetensors"));
        } else {
            qc.put("quant_method", "gptq");
            qc.put("checkpoint_format", l.v1 ? "gptq" : "gptq_v2");
            qc.put("pack_dtype", "int" + l.packBits);
            qc.put("lm_head", l.lmHead);
            if (l.dynamic()) {
                ObjectNode dyn = qc.putObject("dynamic");
                dyn.putObject("-:.*layers\\.1\\.self_attn\\.k_proj");
                dyn.putObject("+:.*down_proj").put("bits", 3);
                dyn.putObject(".*layers\\.0\\.").put("bits", 2);
            }
            qc.putObject("meta").put("quantizer", "gptqmodel:test-layout");
            config.set("quantization_config", qc);
            st.write(dir.resolve("model.safetensors"));
        }
        json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config);
        this.prefixes = prefixes;
        return dir;
    }

    List<String> prefixes;

    public static int[] randomIds(int n, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }

    static int uniform4(String prefix) {
        return 4;
    }

    public static long[] shape(String name) {
        long d = C.hiddenSize(), inter = C.intermediateSize(), q = C.qDim(), kv = C.kvDim();
        if (name.endsWith("norm.weight")) return new long[]{d};
        if (name.contains("q_proj")) return new long[]{q, d};
        if (name.contains("k_proj") || name.contains("v_proj")) return new long[]{kv, d};
        if (name.contains("o_proj")) return new long[]{d, q};
        if (name.contains("down_proj")) return new long[]{d, inter};
        if (name.contains("gate_proj") || name.contains("up_proj")) return new long[]{inter, d};
        return new long[]{C.vocabSize(), d}; // embeddings, head
    }

    static void words(SafeTensorsWriter st, String name, long[] v, int packBits, long rows, long cols) {
        DType t = packBits == 8 ? DType.I8 : packBits == 16 ? DType.I16 : packBits == 32 ? DType.I32 : DType.I64;
        st.add(name, t, new long[]{rows, cols}, out -> {
            ByteBuffer b = ByteBuffer.allocate(v.length * packBits / 8).order(ByteOrder.LITTLE_ENDIAN);
            for (long x : v) {
                if (packBits == 8) b.put((byte) x);
                else if (packBits == 16) b.putShort((short) x);
                else if (packBits == 32) b.putInt((int) x);
                else b.putLong(x);
            }
            b.flip();
            while (b.hasRemaining()) out.write(b);
        });
    }

    void check(Layout l, long seed) throws IOException {
        Path dir = write(l, seed);
        LlamaModel m = LlamaModel.load(dir);
        LlamaModel f = LlamaModel.load(tmp.resolve(l.name + "-float"));
        for (String p : prefixes) {
            Linear lin = p.equals("lm_head") ? m.lmHead() : m.layer(Integer.parseInt(p.split("\\.")[2])).linear(p.substring(p.lastIndexOf('.', p.lastIndexOf('.') - 1) + 1));
            assertTrue(lin instanceof QuantizedLinear, l.name + ": " + p + " is " + lin.getClass().getSimpleName());
            assertArrayEquals(reference.get(p + ".weight"), ((QuantizedLinear) lin).dequantize(), l.name + ": " + p);
        }
        int[] ids = randomIds(13, C.vocabSize(), seed);
        float[] got = m.forward(ids, null, true), want = f.forward(ids, null, true);
        double err = 0;
        for (int i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
        assertTrue(err <= 1e-4, l.name + ": max logit difference " + err);
    }

    @Test
    void gptqModelV1WithBorrowedZerosAtTwoThreeFourBits() throws IOException {
        for (int bits : new int[] {2, 3, 4}) check(new Layout("gptqmodel-v1-" + bits, true, false, 32, false, false, false, p -> bits), bits);
    }

    @Test
    void gptqModelV2WithActOrder() throws IOException {
        check(new Layout("gptqmodel-v2", false, false, 32, true, false, false, GptqToolFoldersTest::uniform4), 5);
    }

    @Test
    void gptqModelDynamicWidthsExclusionAndQuantizedHead() throws IOException {
        check(new Layout("gptqmodel-dynamic", true, false, 32, false, false, true, GptqToolFoldersTest::dynamicBits), 6);
    }

    @Test
    void gptqModelOtherPackDtypes() throws IOException {
        check(new Layout("gptqmodel-int16", true, false, 16, false, false, false, GptqToolFoldersTest::uniform4), 7);
        check(new Layout("gptqmodel-int64-v2", false, false, 64, false, false, false, p -> 2), 8);
        check(new Layout("gptqmodel-int8", true, false, 8, true, false, false, p -> 4), 9);
    }

    @Test
    void autoGptqFileNamesAndQuantizeConfig() throws IOException {
        check(new Layout("autogptq", true, true, 32, true, true, false, GptqToolFoldersTest::uniform4), 10);
    }

    @Test
    void unsupportedSettingsNameTheField() throws IOException {
        Path dir = write(new Layout("bad", true, false, 32, false, false, false, GptqToolFoldersTest::uniform4), 11);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        ((ObjectNode) config.get("quantization_config")).put("checkpoint_format", "marlin");
        json.writeValue(dir.resolve("config.json").toFile(), config);
        BadInputException e = assertThrows(BadInputException.class, () -> LlamaModel.load(dir));
        assertTrue(e.getMessage().contains("checkpoint_format 'marlin'"), e.getMessage());
        ((ObjectNode) config.get("quantization_config")).put("checkpoint_format", "gptq").put("pack_dtype", "int16");
        json.writeValue(dir.resolve("config.json").toFile(), config);
        e = assertThrows(BadInputException.class, () -> LlamaModel.load(dir));
        assertTrue(e.getMessage().contains("expected I16") && e.getMessage().contains("qweight"), e.getMessage());
    }
}
