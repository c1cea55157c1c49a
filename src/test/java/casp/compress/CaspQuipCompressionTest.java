package casp.compress;

import casp.quant.Layers;
import casp.quant.quip.Quip;
import casp.quant.quip.QuipLayer;
import casp.TestData;
import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.Tokenizer;
import casp.io.WeightStore;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.gptq.QuantizedLinear;
import casp.quant.quip.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** `casp compress --method casp --backend quip` on stories260K: exact costs, budget, folder, reload, resume. */
class CaspQuipCompressionTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());
    static final CompressionOptions QUIP2 = new CompressionOptions("quip", 2, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);

    static CaspPlan.Options casp(int factorBits, int aBits) {
        return casp(2, factorBits, aBits);
    }

    static CaspPlan.Options casp(int bits, int factorBits, int aBits) {
        return new CaspPlan.Options("quip", bits, CaspPlan.RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.MEASURED, true, factorBits, aBits,
                false, false, true);
    }

    static CompressionRun.Request request(Path out, CaspPlan.Options o, boolean resume) {
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, QUIP2, out, false, resume, true, o, false);
    }

    /** The cost the allocation plans with is what QuIP# stores, at awkward shapes (padding, ranks below 8) and every width. */
    @Test
    void plannedQuipCostIsTheStoredCost() {
        int[][] shapes = {{8, 64}, {64, 8}, {64, 5}, {5, 64}, {172, 64}, {64, 172}, {13, 17}, {1, 9}};
        for (int[] s : shapes) {
            int rows = s[0], cols = s[1];
            float[] w = Layers.weights(rows, cols, 7L * rows + cols);
            double[] h = Layers.hessian(cols, 3 * cols + 8, rows);
            for (int bits = 2; bits <= 4; bits++) {
                QuipLayer q = new Quip(Quip.Options.spec().withBits(bits)).quantize(w, rows, cols, h);
                String at = rows + "x" + cols + " at " + bits + " bits";
                assertEquals(Quip.storageBits(rows, cols, bits), q.storageBits(), at);
                assertEquals(q.effectiveBits() * rows * cols, q.storageBits(), 1e-6 * q.storageBits(), at);
                assertEquals(CaspPlan.linearCost("quip", rows, cols, bits, -1), q.storageBits(), at);
                assertEquals(LowRankQuantizer.factorStorageBits("quip", rows, cols, bits), q.storageBits(), at);
            }
            // a width QuIP# lacks keeps the per-channel grid (codes + fp16 scale + 8-bit zero per row)
            assertEquals((long) rows * cols * 8 + rows * 24L, LowRankQuantizer.factorStorageBits("quip", rows, cols, 8));
        }
    }

    @Test
    void withinTheTargetFolderAndReport(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("cq");
        CompressionRun.Outcome o = CompressionRun.run(request(out, casp(3, 0), false), null, LOG);
        long weights = 5L * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172);
        JsonNode budget = o.report().get("casp").get("budget");
        assertEquals(2L * weights, budget.get("budget_bits").asLong(), "the budget is the target itself");
        assertTrue(o.effectiveBits() <= 2.0, "effective bits " + o.effectiveBits());
        assertTrue(o.effectiveBits() > 1.95, "the savings are spent: " + o.effectiveBits());
        assertEquals(CaspCompression.storedBits(o.blocks()), budget.get("stored_bits").asLong());
        assertEquals(budget.get("planned_bits").asLong(), budget.get("stored_bits").asLong(), "costs are known exactly in advance");
        assertEquals(o.effectiveBits(), budget.get("effective_bits").asDouble(), 1e-12);
        // The stored bits, recounted from the results: QuIP# linears and factors by their own count.
        long recount = 0;
        int wide = 0;
        for (BlockResult b : o.blocks()) {
            for (LinearResult r : b.linears()) {
                if (r.lowRank() != null) {
                    assertEquals("quip#", r.lowRank().aFormat());
                    assertEquals("quip#", r.lowRank().bFormat());
                    recount += r.lowRank().factorA().storageBits() + r.lowRank().factorB().storageBits();
                } else {
                    QuipLayer q = assertInstanceOf(QuipLayer.class, r.stored(), r.name());
                    assertEquals(r.bits(), q.bits());
                    recount += q.storageBits();
                    if (r.bits() == 3) wide++;
                }
            }
        }
        assertEquals(budget.get("stored_bits").asLong(), recount);
        assertTrue(wide > 0, "the low-rank savings widen some linears");

        WeightStore w = WeightStore.open(out);
        String p = "model.layers.2.self_attn.";
        for (String f : new String[]{"q_u_proj", "q_v_proj", "k_u_proj", "k_v_proj"}) {
            assertTrue(w.has(p + f + ".qidxs"), p + f);
            assertFalse(w.has(p + f + ".qweight") || w.has(p + f + ".weight"), p + f);
        }
        assertArrayEquals(new long[]{64, 1}, w.info(p + "q_u_proj.qidxs").shape()); // A [64, 8]
        assertArrayEquals(new long[]{8, 8}, w.info(p + "q_v_proj.qidxs").shape()); // B [8, 64]
        assertArrayEquals(new long[]{8, 8}, w.info(p + "k_v_proj.qidxs").shape()); // B [5, 64]: rows padded to 8
        assertFalse(w.has(p + "q_proj.weight"));
        JsonNode qc = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("quip#", qc.get("quant_method").asText());
        JsonNode c = qc.get("casp");
        assertEquals("casp", c.get("method").asText());
        assertEquals("quip", c.get("backend").asText());
        assertEquals(5, c.get("low_rank").get("model.layers.2.self_attn.k_proj").get("rank").asInt());
        assertEquals("quip#", c.get("low_rank").get("model.layers.2.self_attn.k_proj").get("a_format").asText());
        assertEquals(3, c.get("bits").get("model.layers.2.self_attn.k_u_proj").asInt());
        JsonNode lr = o.report().get("casp").get("low_rank").get(0);
        assertEquals("quip#", lr.get("factor_quantizer_a").asText());
        assertEquals("2 bits x weights", o.report().get("casp").get("options").get("budget_rule").asText());

        // Resume after a crash gives the same tensors as the uninterrupted run (QuIP# factors in the checkpoint).
        Path resumed = tmp.resolve("resumed");
        class Crash extends RuntimeException {}
        assertThrows(Crash.class, () -> CompressionRun.run(request(resumed, casp(3, 0), false), new SequentialCompressor.Listener() {
            @Override public void blockDone(BlockResult b, Calibration a) {
                if (b.layer() == 1) throw new Crash();
            }
        }, LOG));
        CompressionRun.Outcome r = CompressionRun.run(request(resumed, casp(3, 0), true), null, LOG);
        assertEquals(2, r.resumedFromBlock());
        assertEquals(o.effectiveBits(), r.effectiveBits());
        SafeTensorsFile fa = SafeTensorsFile.open(out.resolve("model.safetensors")), fb = SafeTensorsFile.open(resumed.resolve("model.safetensors"));
        assertEquals(fa.tensors().keySet(), fb.tensors().keySet());
        for (String name : fa.tensors().keySet()) assertArrayEquals(fa.readBytes(name), fb.readBytes(name), name);
    }

    /**
     * The written folder, reloaded, runs the codes (QuipLinear for every linear and QuIP# factors;
     * an 8-bit A, a width QuIP# lacks, as GPTQ; that only fits a 3-bit target) and gives the
     * in-memory compressed model's logits.
     */
    @Test
    void reloadedFolderGivesTheCompressedModelsLogits(@TempDir Path tmp) throws Exception {
        Path dir = TestData.model("stories260K");
        ModelFolder source = ModelFolder.open(dir);
        int[] ids = Tokenizer.load(dir).encode("Once upon a time, there was a little girl named Lily. She loved to play");
        for (int aBits : new int[]{0, 8}) {
            int target = aBits == 8 ? 3 : 2;
            CompressionOptions opt = new CompressionOptions("quip", target, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);
            LlamaModel m = LlamaModel.load(source);
            Calibration calib = Calibration.fromTextFile(m, Tokenizer.load(dir), TestData.file("models/stories260K/reference/eval.txt"), 6, 96, 2);
            CaspCompressionTest.Reloaded r = CaspCompressionTest.compressWriteAndLoad(source, m, calib, opt, casp(target, 3, aBits),
                    tmp.resolve("c" + aBits));
            CaspCompression c = r.casp();
            assertTrue(CaspCompression.storedBits(r.blocks()) <= target * CompressionReport.weights(r.blocks()));
            LlamaModel loaded = r.loaded();
            for (int l = 0; l < 5; l++) {
                LowRankLinear q = assertInstanceOf(LowRankLinear.class, loaded.layer(l).linear(DecoderLayer.Q));
                assertEquals(c.plan().qRank[l], q.rank());
                assertInstanceOf(QuipLinear.class, q.b());
                if (aBits == 8) assertEquals(8, assertInstanceOf(QuantizedLinear.class, q.a()).bits());
                else assertInstanceOf(QuipLinear.class, q.a());
                LowRankLinear k = assertInstanceOf(LowRankLinear.class, loaded.layer(l).linear(DecoderLayer.K));
                assertEquals(c.plan().kRank[l], k.rank());
                for (String name : CaspPlan.allocatable(true)) assertInstanceOf(QuipLinear.class, loaded.layer(l).linear(name), l + " " + name);
            }
            float[] want = m.forward(ids, null, true), got = loaded.forward(ids, null, true);
            double maxDiff = 0, maxAbs = 0;
            for (int i = 0; i < want.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
                maxAbs = Math.max(maxAbs, Math.abs(want[i]));
            }
            assertTrue(maxAbs > 1, "logits are not trivial: " + maxAbs);
            assertTrue(maxDiff < 1e-3, "A at " + aBits + " bits: logits of the reloaded model differ by " + maxDiff);
        }
    }

    /**
     * --budget plain: the budget is what QuIP# alone stores, counted by the same function as every
     * method's effective bits (codes, sign vectors, scales; factors at their own widths).
     */
    @Test
    void plainBudgetIsQuipAlonesStoredBits(@TempDir Path tmp) throws Exception {
        CompressionRun.Outcome alone = CompressionRun.run(new CompressionRun.Request(TestData.model("stories260K"),
                TestData.file("models/stories260K/reference/eval.txt"), null, QUIP2, tmp.resolve("q"), false, false, true, null, false), null, LOG);
        long weights = CompressionReport.weights(alone.blocks());
        long aloneBits = CaspCompression.storedBits(alone.blocks());
        assertEquals(alone.effectiveBits(), (double) aloneBits / weights, 1e-12, "plain QuIP#'s effective bits are its stored bits");
        assertTrue(alone.effectiveBits() > 2, "padding, signs and scales come on top of the codes: " + alone.effectiveBits());
        CaspPlan.Options d = casp(3, 0);
        CaspPlan.Options plain = new CaspPlan.Options(d.backend(), d.bits(), CaspPlan.RankRule.SPARSITY, d.rankRatio(), d.rankThreshold(),
                d.allocation(), d.perLinear(), d.factorBits(), d.aBits(), d.rotate(), d.refitA(), d.lowRank(), null, true);
        CompressionRun.Outcome o = CompressionRun.run(request(tmp.resolve("cq"), plain, false), null, LOG);
        JsonNode budget = o.report().get("casp").get("budget");
        assertEquals(aloneBits, budget.get("budget_bits").asLong(), "the budget is QuIP# alone's stored bits");
        assertEquals(CaspCompression.storedBits(o.blocks()), budget.get("stored_bits").asLong());
        assertEquals(o.effectiveBits(), (double) CaspCompression.storedBits(o.blocks()) / weights, 1e-12);
        assertTrue(o.effectiveBits() <= alone.effectiveBits() && o.effectiveBits() > 2.0,
                "within QuIP# alone's bits and above the target: " + o.effectiveBits());
        assertEquals("plain quip 2-bit", o.report().get("casp").get("options").get("budget_rule").asText());
        assertEquals("sparsity", o.report().get("casp").get("options").get("rank_rule").asText());
        assertEquals(5, o.report().get("casp").get("attention_sparsity").size());
    }
}
