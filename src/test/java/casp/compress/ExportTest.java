package casp.compress;

import casp.IndependentGptqReader;
import casp.TestData;
import casp.cli.Main;
import casp.io.BadInputException;
import casp.kernel.Fp16;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import casp.model.Linear;
import casp.quant.gptq.QuantizedLinear;
import casp.quant.lowrank.LowRankLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * casp's GPTQ folders read by an independent reader written from AutoGPTQ's and GPTQModel's rules
 * ({@link IndependentGptqReader}), CASP folders marked so other loaders refuse them, and
 * `casp export` turning a CASP folder into a standard one (stories260K).
 */
class ExportTest {
    @TempDir
    static Path tmp;
    static Path plain, casp;
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());

    @BeforeAll
    static void compress() throws Exception {
        plain = tmp.resolve("plain");
        CompressionRun.run(new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, CaspCompressionTest.GPTQ2, plain, false, false, false), null, LOG);
        casp = tmp.resolve("casp");
        CompressionRun.run(CaspCompressionTest.request(casp, CaspCompressionTest.casp(BitAllocation.Mode.MEASURED, true),
                false, false), null, LOG);
    }

    static Linear linear(LlamaModel m, String prefix) {
        String[] parts = prefix.split("\\.");
        return m.layer(Integer.parseInt(parts[2])).linear(parts[3] + "." + parts[4]);
    }

    @Test
    void plainGptqFolderReadsTheSameInAnIndependentReader() throws Exception {
        LlamaModel m = LlamaModel.load(plain);
        Map<String, float[]> w = IndependentGptqReader.weights(plain);
        assertEquals(5 * 7, w.size());
        for (var e : w.entrySet())
            assertArrayEquals(((QuantizedLinear) linear(m, e.getKey())).dequantize(), e.getValue(), 0f, e.getKey());
        JsonNode config = new ObjectMapper().readTree(plain.resolve("config.json").toFile());
        assertEquals("llama", config.get("model_type").asText(), "a plain GPTQ folder stays standard");
    }

    @Test
    void caspFolderIsMarkedSoOtherLoadersRefuseIt() throws Exception {
        JsonNode config = new ObjectMapper().readTree(casp.resolve("config.json").toFile());
        assertEquals("casp_llama", config.get("model_type").asText());
        assertEquals("CaspLlamaForCausalLM", config.get("architectures").get(0).asText());
        assertEquals("llama", config.path("quantization_config").path("casp").path("original_model_type").asText());
        assertInstanceOf(LowRankLinear.class, LlamaModel.load(casp).layer(0).linear(DecoderLayer.Q), "casp still reads it");
    }

    @Test
    void exportedCaspFolderIsStandardAndKeepsTheWeights() throws Exception {
        Path out = tmp.resolve("exported");
        ByteArrayOutputStream so = new ByteArrayOutputStream();
        PrintStream old = System.out;
        System.setOut(new PrintStream(so));
        int rc;
        try {
            rc = Main.execute("export", casp.toString(), "--format", "gptq", "--out", out.toString());
        } finally {
            System.setOut(old);
        }
        assertEquals(0, rc);
        assertTrue(so.toString().contains("q/k: 10 low-rank projections"), so.toString());
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("llama", config.get("model_type").asText());
        assertEquals("LlamaForCausalLM", config.get("architectures").get(0).asText());
        JsonNode dyn = config.get("quantization_config").get("dynamic");
        assertTrue(dyn.has("-:^model\\.layers\\.0\\.self_attn\\.q_proj$"), dyn.toString());

        LlamaModel c = LlamaModel.load(casp), e = LlamaModel.load(out);
        Map<String, float[]> independent = IndependentGptqReader.weights(out);
        assertEquals(5 * 5, independent.size(), "v, o, gate, up, down of 5 layers");
        for (var x : independent.entrySet()) // the quantized linears: casp's weights, bit for bit
            assertArrayEquals(((QuantizedLinear) linear(c, x.getKey())).dequantize(), x.getValue(), 0f, x.getKey());
        for (int l = 0; l < 5; l++) { // q/k: the product of the factors, rounded to fp16
            for (String name : new String[]{DecoderLayer.Q, DecoderLayer.K}) {
                float[] product = Exporter.product((LowRankLinear) c.layer(l).linear(name));
                float[] stored = new float[product.length];
                Linear x = e.layer(l).linear(name);
                assertFalse(x instanceof LowRankLinear);
                float[] eye = new float[x.in() * x.in()];
                for (int i = 0; i < x.in(); i++) eye[i * x.in() + i] = 1f;
                float[] cols = new float[x.in() * x.out()];
                x.forward(eye, 0, cols, 0, x.in());
                for (int r = 0; r < x.out(); r++) for (int k = 0; k < x.in(); k++) stored[r * x.in() + k] = cols[k * x.out() + r];
                for (int i = 0; i < product.length; i++)
                    assertEquals(Fp16.toFloat(Fp16.fromFloat(product[i])), stored[i], 0f, "layer " + l + " " + name);
            }
        }
        int[] ids = {1, 403, 261, 373, 282, 280, 300, 323};
        float[] a = c.forward(ids, null, true), b = e.forward(ids, null, true);
        double err = 0;
        for (int i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
        assertTrue(err < 2e-2, "fp16 q/k move the logits by " + err);
    }

    @Test
    void exportRefusesWhatTheFormatCannotHold() {
        assertThrows(BadInputException.class, () -> Exporter.export(casp, tmp.resolve("x"), Exporter.Format.AQLM, 0, false));
        assertThrows(BadInputException.class, () -> Exporter.export(casp, tmp.resolve("y"), Exporter.Format.GPTQ, 5, false));
        assertFalse(Files.exists(tmp.resolve("x")) || Files.exists(tmp.resolve("y")), "nothing written");
        assertEquals(Main.EXIT_BAD_INPUT, Main.execute("export", tmp.resolve("missing").toString(), "--format", "gptq", "--out",
                tmp.resolve("z").toString()));
        assertEquals(Main.EXIT_BAD_INPUT, Main.execute("export", casp.toString(), "--format", "exl2", "--out", tmp.resolve("z").toString()));
    }
}
