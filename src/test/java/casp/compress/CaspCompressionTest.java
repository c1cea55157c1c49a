package casp.compress;

import casp.TestData;
import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.Tokenizer;
import casp.io.WeightStore;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.LlamaModel;
import casp.quant.QuantizationConfig;
import casp.quant.gptq.QuantizedLinear;
import casp.quant.lowrank.LowRankLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `casp compress --method casp` end to end on stories260K: budget, folder, reload, resume. */
class CaspCompressionTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());
    static final CompressionOptions GPTQ2 = new CompressionOptions("gptq", 2, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);

    static CaspPlan.Options casp(BitAllocation.Mode mode, boolean perLinear) {
        CaspPlan.Options d = CaspPlan.Options.defaults();
        return new CaspPlan.Options("gptq", 2, d.rankRule(), d.rankRatio(), d.rankThreshold(), mode, perLinear, 3, 0, false, false, true);
    }

    static CompressionRun.Request request(Path out, CaspPlan.Options o, boolean lowRankOnly, boolean resume) {
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, GPTQ2, out, false, resume, true, o, lowRankOnly);
    }

    @Test
    void equalBudgetFolderAndReport(@TempDir Path tmp) throws Exception {
        Path plainOut = tmp.resolve("plain");
        CompressionRun.Outcome plain = CompressionRun.run(new CompressionRun.Request(TestData.model("stories260K"),
                TestData.file("models/stories260K/reference/eval.txt"), null, GPTQ2, plainOut, false, false, false), null, LOG);
        Path out = tmp.resolve("casp");
        CompressionRun.Outcome o = CompressionRun.run(request(out, casp(BitAllocation.Mode.MEASURED, true), false, false), null, LOG);
        // Equal budget: CASP's effective bits (factors, scales, zeros: everything) are not above plain GPTQ's.
        assertTrue(o.effectiveBits() <= plain.effectiveBits(), o.effectiveBits() + " > " + plain.effectiveBits());
        assertTrue(o.effectiveBits() > plain.effectiveBits() - 0.05, "the savings are spent: " + o.effectiveBits());
        JsonNode budget = o.report().get("casp").get("budget");
        assertEquals(plain.effectiveBits(), budget.get("budget_effective_bits").asDouble(), 1e-12);
        assertEquals(o.effectiveBits(), budget.get("effective_bits").asDouble(), 1e-12);
        assertTrue(budget.get("within_budget").asBoolean());
        assertEquals(CaspCompression.storedBits(o.blocks()), budget.get("stored_bits").asLong());
        assertEquals(budget.get("planned_bits").asLong(), budget.get("stored_bits").asLong(), "costs are known exactly in advance");

        // The folder: q/k as factors (GPTQ tensors), the rest as GPTQ tensors; config names the ranks.
        WeightStore w = WeightStore.open(out);
        for (int l = 0; l < 5; l++) {
            String p = "model.layers." + l + ".self_attn.";
            assertFalse(w.has(p + "q_proj.weight") || w.has(p + "q_proj.qweight"));
            for (String f : new String[]{"q_u_proj", "q_v_proj", "k_u_proj", "k_v_proj"}) assertTrue(w.has(p + f + ".qweight"), p + f);
            assertArrayEquals(new long[]{8}, w.info(p + "q_u_proj.g_idx").shape()); // A [64, 8]: 8 inputs
            assertArrayEquals(new long[]{64}, w.info(p + "q_v_proj.g_idx").shape()); // B [8, 64]
        }
        JsonNode qc = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("casp", qc.get("casp").get("method").asText());
        assertEquals(8, qc.get("casp").get("low_rank").get("model.layers.0.self_attn.q_proj").get("rank").asInt());
        assertEquals(5, qc.get("casp").get("low_rank").get("model.layers.3.self_attn.k_proj").get("rank").asInt());
        assertEquals(3, qc.get("casp").get("bits").get("model.layers.0.self_attn.q_u_proj").asInt());
        JsonNode units = o.report().get("casp").get("units");
        assertEquals(25, units.size()); // v, o, gate, up, down x 5 layers
        assertTrue(units.get(0).get("distortion").get(0).asDouble() > units.get(0).get("distortion").get(1).asDouble());
        assertEquals(5, o.report().get("casp").get("block_influence").size());
    }

    /** A CASP compression run in memory as the command runs it, its budget checked, and the folder it writes, loaded back. */
    record Reloaded(CaspCompression casp, List<BlockResult> blocks, LlamaModel loaded) {}

    /** Compresses m (loaded from source) with CASP under opt and o, writes the folder to out and loads it. */
    static Reloaded compressWriteAndLoad(ModelFolder source, LlamaModel m, Calibration calib, CompressionOptions opt,
                                         CaspPlan.Options o, Path out) throws Exception {
        CaspCompression c = CaspCompression.prepare(m, calib, opt, o, false, LOG);
        List<BlockResult> blocks = new SequentialCompressor(m, c.quantizerPlan(), true).run(calib, null);
        List<LinearResult> results = new ArrayList<>();
        for (BlockResult b : blocks) results.addAll(b.linears());
        c.checkBudget(blocks);
        QuantizationConfig qc = c.annotate(CompressedModelWriter.quantizationConfig(source, opt, results));
        CompressedModelWriter.write(source, results, qc, new ObjectMapper().createObjectNode(), out, false);
        return new Reloaded(c, blocks, LlamaModel.load(out));
    }

    @Test
    void reloadedFolderRunsTheFactorsWithTheSameLogits(@TempDir Path tmp) throws Exception {
        Path dir = TestData.model("stories260K");
        ModelFolder source = ModelFolder.open(dir);
        LlamaModel m = LlamaModel.load(source);
        Calibration calib = Calibration.fromTextFile(m, Tokenizer.load(dir), TestData.file("models/stories260K/reference/eval.txt"), 6, 96, 2);
        CaspPlan.Options o = new CaspPlan.Options("gptq", 2, CaspPlan.RankRule.BUDGET, 0.25, 0.05, BitAllocation.Mode.PAPER, false,
                3, 4, true, true, true);
        Reloaded r = compressWriteAndLoad(source, m, calib, GPTQ2, o, tmp.resolve("c"));
        CaspCompression c = r.casp();
        LlamaModel loaded = r.loaded();
        for (int l = 0; l < 5; l++) {
            LowRankLinear q = assertInstanceOf(LowRankLinear.class, loaded.layer(l).linear(DecoderLayer.Q));
            assertEquals(c.plan().qRank[l], q.rank());
            assertInstanceOf(QuantizedLinear.class, q.a());
            assertEquals(4, ((QuantizedLinear) q.a()).bits());
            assertEquals(3, ((QuantizedLinear) q.b()).bits());
            assertInstanceOf(QuantizedLinear.class, loaded.layer(l).linear(DecoderLayer.UP));
        }
        int[] ids = Tokenizer.load(dir).encode("Once upon a time, there was a little girl named Lily. She loved to play");
        float[] want = m.forward(ids, null, true), got = loaded.forward(ids, null, true);
        double maxDiff = 0;
        for (int i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
        assertTrue(maxDiff < 1e-3, "logits of the reloaded model differ by " + maxDiff);
    }

    @Test
    void lowRankOnlyKeepsTheRestFloatAndResumeGivesTheSameModel(@TempDir Path tmp) throws Exception {
        CaspPlan.Options dense = new CaspPlan.Options("gptq", 2, CaspPlan.RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.MEASURED, true,
                0, 0, false, false, true);
        Path out = tmp.resolve("lr");
        CompressionRun.Outcome o = CompressionRun.run(request(out, dense, true, false), null, LOG);
        assertEquals(10, o.blocks().stream().mapToInt(b -> b.linears().size()).sum(), "only q and k");
        LlamaModel loaded = LlamaModel.load(out);
        LowRankLinear q = assertInstanceOf(LowRankLinear.class, loaded.layer(2).linear(DecoderLayer.Q));
        assertInstanceOf(DenseLinear.class, q.a());
        assertInstanceOf(DenseLinear.class, loaded.layer(2).linear(DecoderLayer.V));
        double loss = o.blocks().get(0).linears().get(0).stats().get("truncation_loss").doubleValue();
        assertEquals(loss, o.blocks().get(0).linears().get(0).proxyError(), 1e-3 * loss, "dense factors: proxy error = truncation loss");

        // Resume after a crash (CASP with quantized factors) gives the same tensors as an uninterrupted run.
        CaspPlan.Options co = casp(BitAllocation.Mode.MEASURED, true);
        Path fresh = tmp.resolve("fresh");
        CompressionRun.run(request(fresh, co, false, false), null, LOG);
        Path resumed = tmp.resolve("resumed");
        class Crash extends RuntimeException {}
        assertThrows(Crash.class, () -> CompressionRun.run(request(resumed, co, false, false), new SequentialCompressor.Listener() {
            @Override public void blockDone(BlockResult b, Calibration a) {
                if (b.layer() == 1) throw new Crash();
            }
        }, LOG));
        CompressionRun.run(request(resumed, co, false, true), null, LOG);
        SafeTensorsFile fa = SafeTensorsFile.open(fresh.resolve("model.safetensors")), fb = SafeTensorsFile.open(resumed.resolve("model.safetensors"));
        assertEquals(fa.tensors().keySet(), fb.tensors().keySet());
        for (String name : fa.tensors().keySet()) assertArrayEquals(fa.readBytes(name), fb.readBytes(name), name);
    }
}
