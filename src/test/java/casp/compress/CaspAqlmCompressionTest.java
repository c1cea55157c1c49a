package casp.compress;

import casp.TestData;
import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.io.Tokenizer;
import casp.io.WeightStore;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
import casp.quant.Layers;
import casp.quant.QuantizationConfig;
import casp.quant.aqlm.Aqlm;
import casp.quant.aqlm.AqlmLinear;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.aqlm.AqlmWeight;
import casp.quant.gptq.GptqFormat;
import casp.quant.gptq.QuantizedLinear;
import casp.quant.gptq.QuantizedWeight;
import casp.quant.lowrank.LowRankLayer;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.lowrank.LowRankQK;
import casp.quant.registry.Formats;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * `casp compress --method casp --backend aqlm`: exact AQLM costs at awkward shapes, the budget rules
 * (the target, refused on stories260K; plain AQLM's bits), folder, resume, reload. AQLM is slow:
 * few samples, one round, 2-bit codebooks (K = 4 codewords).
 */
class CaspAqlmCompressionTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());
    /** The quantizer settings at the 2-bit target with 2-bit codebooks (8x2), one round: quick. */
    static final Aqlm.Options AQ = Aqlm.Options.defaults(2).withCodebooks(8, 2).withIterations(1).withKmeansIterations(2).withBeamWidth(2);
    static final CompressionOptions AQLM2 = new CompressionOptions("aqlm", 2, CompressionOptions.AUTO_GROUP, false, false, true, 4, 64, 5, 0.01, AQ);

    static CaspPlan.Options casp(BitAllocation.Mode mode, boolean plain) {
        return new CaspPlan.Options("aqlm", 2, CaspPlan.RankRule.RATIO, 0.25, 0.05, mode, true, 3, 0, false, false, true, AQ, plain);
    }

    static CompressionRun.Request request(Path out, CaspPlan.Options o, boolean resume) {
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, AQLM2, out, false, resume, true, o, false);
    }

    /** Bits counted from the stored arrays themselves: B per code, 16 per codebook value and scale (fp16). */
    static long counted(AqlmWeight a) {
        AqlmTensors t = a.tensors();
        return (long) t.codes().length * t.codebookBits() + 16L * t.codebooks().length + 16L * t.scales().length;
    }

    /** The cost the plan uses is what AQLM stores, at awkward shapes (padded groups, tiny factors) and both candidate widths. */
    @Test
    void plannedAqlmCostIsTheStoredCost() {
        int[][] shapes = {{8, 64}, {64, 8}, {64, 5}, {5, 64}, {172, 64}, {64, 172}, {13, 17}, {1, 9}};
        for (int[] s : shapes) {
            int rows = s[0], cols = s[1];
            float[] w = Layers.weights(rows, cols, 7L * rows + cols);
            double[] h = Layers.hessian(cols, 3 * cols + 8, rows);
            for (int cb : new int[]{2, 4}) {
                for (int bits = 2; bits <= 3; bits++) {
                    AqlmWeight a = new Aqlm(CaspAqlm.at(AQ.withCodebooks(8, 2).withCodebooks(16 / cb, cb), bits)).quantize(w, rows, cols, h);
                    String at = rows + "x" + cols + " at " + bits + " bits, " + cb + "-bit codebooks";
                    assertEquals(bits * 8 / cb, a.numCodebooks, at);
                    assertEquals(counted(a), CaspAqlm.linearCost(rows, cols, bits, cb), at);
                    CaspPlan.Options o = new CaspPlan.Options("aqlm", 2, CaspPlan.RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.UNIFORM, true,
                            3, 0, false, false, true, AQ.withCodebooks(16 / cb, cb), false);
                    assertEquals(counted(a), CaspPlan.linearCost(o, rows, cols, bits, -1), at);
                }
            }
        }
        // Factors: AQLM only where it stores no more than per-channel GPTQ; small factors keep GPTQ, exactly counted.
        assertEquals("gptq", CaspAqlm.factorMethod(64, 8, 3, 2));
        assertEquals(GptqFormat.storageBits(64, 8, 3, -1), CaspAqlm.factorCost(64, 8, 3, 2));
        assertEquals("gptq", CaspAqlm.factorMethod(64, 8, 3, 1), "24 one-bit codebooks: more than the quantizer's 16");
        // 2100 rows: 2 bits of codes each way; AQLM 16 per row (scale) + 4096 (codebooks) vs GPTQ 18 per row (scale + zero)
        assertEquals("aqlm", CaspAqlm.factorMethod(2100, 8, 2, 2));
        assertEquals("gptq", CaspAqlm.factorMethod(2000, 8, 2, 2));
        assertEquals(0, CaspAqlm.factorCost(7, 3, 0, 2) - 32L * 21, "dense factors at 32 bits");
    }

    /** A big enough factor is AQLM; its stored bits are the plan's, and it survives the checkpoint and a folder. */
    @Test
    void aqlmFactorsAreCountedStoredAndReloaded(@TempDir Path tmp) throws Exception {
        int rows = 2100, cols = 64, rank = 8;
        float[] w = Layers.weights(rows, cols, 11);
        double[] h = Layers.hessian(cols, 3 * cols, 3);
        LowRankQuantizer.Options fo = new LowRankQuantizer.Options(rank, 0, "aqlm", 2, 2, -1, false, false, 1, LowRankQK.Options.defaults(), AQ);
        LowRankLayer l = new LowRankQuantizer(fo).quantize(w, rows, cols, h);
        AqlmWeight a = assertInstanceOf(AqlmWeight.class, l.factorA(), "A [2100, 8] is cheaper as AQLM");
        assertInstanceOf(QuantizedWeight.class, l.factorB(), "B [8, 64] is cheaper as per-channel GPTQ");
        assertEquals(8, a.numCodebooks);
        long want = CaspAqlm.factorCost(rows, rank, 2, 2) + CaspAqlm.factorCost(rank, cols, 2, 2);
        assertEquals(want, l.storageBits());
        assertEquals(counted(a) + GptqFormat.storageBits(rank, cols, 2, -1), want);
        assertEquals("aqlm", l.aFormat());
        assertEquals("gptq-v1", l.bFormat());

        // Checkpoint form: written and read back bit for bit (M and B from the codebooks tensor).
        Path st = tmp.resolve("f.safetensors");
        SafeTensorsWriter sw = new SafeTensorsWriter();
        l.write(sw, "x_proj");
        sw.write(st);
        LowRankLayer back = (LowRankLayer) Formats.read(SafeTensorsFile.open(st), "x_proj", l.method(), rows, cols, l.bits(), l.stats());
        assertArrayEquals(a.dequantize(), back.factorA().dequantize());
        assertEquals(want, back.storageBits());

        // Folder form: the loader reads the codebook count from casp.bits and the rank from casp.low_rank.
        Path dir = tmp.resolve("folder");
        Files.createDirectories(dir);
        String p = "model.layers.0.self_attn.q_proj";
        SafeTensorsWriter fw = new SafeTensorsWriter();
        fw.addFloats("model.embed_tokens.weight", new long[]{4, cols}, new float[4 * cols]);
        l.write(fw, p);
        fw.write(dir.resolve("model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(TestData.model("stories260K").resolve("config.json").toFile());
        Map<String, Integer> bits = new LinkedHashMap<>();
        bits.put(LowRankLinear.uPrefix(p), l.aBits());
        bits.put(LowRankLinear.vPrefix(p), l.bBits());
        QuantizationConfig qc = new QuantizationConfig("aqlm", null, null, new QuantizationConfig.AqlmFields(2, 8, 8, 1, List.of()),
                new QuantizationConfig.Casp(1, "casp", "aqlm", "aqlm", bits, null, Map.of(p, CompressedModelWriter.lowRankEntry(l)), null, null, null));
        cfg.set("quantization_config", qc.toJson());
        Files.write(dir.resolve("config.json"), json.writeValueAsBytes(cfg));
        LowRankLinear lr = LowRankLinear.load(ModelFolder.open(dir), p, cols, rows, null);
        assertEquals(rank, lr.rank());
        AqlmLinear la = assertInstanceOf(AqlmLinear.class, lr.a());
        assertArrayEquals(a.dequantize(), la.dequantize());
        assertInstanceOf(QuantizedLinear.class, lr.b());
        float[] x = Layers.weights(1, cols, 5), y = new float[rows], want2 = new float[rows];
        lr.forward(x, 0, y, 0, 1);
        float[] ad = l.a(), bd = l.b(); // the factors as used (dequantized)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int k = 0; k < rank; k++) {
                double t = 0;
                for (int j = 0; j < cols; j++) t += bd[k * cols + j] * x[j];
                s += ad[r * rank + k] * t;
            }
            want2[r] = (float) s;
        }
        for (int r = 0; r < rows; r++) assertEquals(want2[r], y[r], 1e-4 * (1 + Math.abs(want2[r])), "row " + r);

        // A width that is not whole codebooks in casp.bits is a user error naming the tensor.
        bits.put(LowRankLinear.uPrefix(p), 3);
        QuantizationConfig bad = qc.withAqlm(new QuantizationConfig.AqlmFields(16, 8, 8, 1, List.of())).withCasp(qc.casp().withBits(bits));
        cfg.set("quantization_config", bad.toJson());
        Files.write(dir.resolve("config.json"), json.writeValueAsBytes(cfg));
        casp.io.BadInputException e = assertThrows(casp.io.BadInputException.class,
                () -> LowRankLinear.load(ModelFolder.open(dir), p, cols, rows, null));
        assertTrue(e.getMessage().contains(LowRankLinear.uPrefix(p) + ".codes"), e.getMessage());
    }

    /** At the target itself the plan fits a model with wide layers, and is refused (naming the cheapest plan) on stories260K. */
    @Test
    void targetBudget() {
        var cfg = SyntheticModel.config("llama", 256, 512, 2, 4, 4, 64, 32, 64, 10000, null, true);
        LlamaModel big = SyntheticModel.create(cfg, 3);
        CaspPlan.GroupRule none = in -> -1;
        CaspPlan.Backend be = (b, in) -> new Aqlm(CaspAqlm.at(AQ, b));
        CaspPlan plan = CaspPlan.make(big, casp(BitAllocation.Mode.UNIFORM, false), null, be, none, LowRankQK.Options.defaults());
        long weights = 2L * (4 * 256 * 256 + 3 * 256 * 512);
        assertEquals(weights, plan.originalWeights);
        assertEquals(2 * weights, plan.budgetBits, "the budget is the target itself");
        assertTrue(plan.plannedBits() <= plan.budgetBits);
        // the plan's bits, recounted: factors (GPTQ at these sizes) and AQLM linears at their widths
        long recount = 0;
        for (int l = 0; l < 2; l++) {
            for (String n : DecoderLayer.LINEARS) {
                var lin = big.layer(l).linear(n);
                if (plan.isLowRank(n)) {
                    int r = n.equals(DecoderLayer.Q) ? plan.qRank[l] : plan.kRank[l];
                    recount += CaspAqlm.factorCost(r, lin.in(), 3, 2) + CaspAqlm.factorCost(lin.out(), r, 3, 2);
                } else {
                    recount += CaspAqlm.linearCost(lin.out(), lin.in(), plan.width(l, n), 2);
                }
            }
        }
        assertEquals(plan.plannedBits(), recount);
        assertTrue(plan.plannedEffectiveBits() > 1.8, "the savings are spent: " + plan.plannedEffectiveBits());

        LlamaModel small = LlamaModel.load(TestData.model("stories260K"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CaspPlan.make(small, casp(BitAllocation.Mode.UNIFORM, false), null, be, none, LowRankQK.Options.defaults()));
        assertTrue(e.getMessage().contains("2.5153 bits per weight") && e.getMessage().contains("--budget plain"), e.getMessage());
    }

    @Test
    void plainBudgetFolderReportAndResume(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("ca");
        CompressionRun.Outcome o = CompressionRun.run(request(out, casp(BitAllocation.Mode.MEASURED, true), false), null, LOG);
        long weights = 5L * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172);
        long plainAqlm = 5L * (2 * CaspAqlm.linearCost(64, 64, 2, 2) + 2 * CaspAqlm.linearCost(32, 64, 2, 2)
                + 2 * CaspAqlm.linearCost(172, 64, 2, 2) + CaspAqlm.linearCost(64, 172, 2, 2));
        JsonNode budget = o.report().get("casp").get("budget");
        assertEquals(plainAqlm, budget.get("budget_bits").asLong(), "plain AQLM 8x2's stored bits");
        assertTrue(o.effectiveBits() <= (double) plainAqlm / weights, "effective bits " + o.effectiveBits());
        assertEquals(CaspCompression.storedBits(o.blocks()), budget.get("stored_bits").asLong());
        assertEquals(budget.get("planned_bits").asLong(), budget.get("stored_bits").asLong(), "costs are known exactly in advance");
        long recount = 0;
        int wide = 0;
        for (BlockResult b : o.blocks()) {
            for (LinearResult r : b.linears()) {
                if (r.lowRank() != null) { // 64 x 8 and 8 x 64 factors: codebooks would cost more than per-channel GPTQ
                    assertEquals("gptq-v1", r.lowRank().aFormat());
                    assertEquals("gptq-v1", r.lowRank().bFormat());
                    recount += r.lowRank().storageBits();
                } else {
                    AqlmWeight a = (AqlmWeight) r.stored();
                    assertNotNull(a, r.name());
                    assertEquals(r.bits() * 4, a.numCodebooks, r.name());
                    recount += counted(a);
                    if (r.bits() == 3) wide++;
                }
            }
        }
        assertEquals(budget.get("stored_bits").asLong(), recount);
        assertTrue(wide > 0, "the low-rank savings widen some linears");
        JsonNode qc = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("aqlm", qc.get("quant_method").asText());
        assertEquals(2, qc.get("nbits_per_codebook").asInt());
        JsonNode c = qc.get("casp");
        assertEquals("casp", c.get("method").asText());
        assertEquals("aqlm", c.get("backend").asText());
        assertEquals("aqlm", c.get("tensor_format").asText());
        assertEquals(5, c.get("low_rank").get("model.layers.2.self_attn.k_proj").get("rank").asInt());
        assertEquals("plain aqlm 2-bit 8x2", o.report().get("casp").get("options").get("budget_rule").asText());
        WeightStore ws = WeightStore.open(out);
        assertArrayEquals(new long[]{12, 4, 1, 8}, firstWide(ws, c), "a 3-bit linear has 12 two-bit codebooks");

        Path resumed = tmp.resolve("resumed");
        class Crash extends RuntimeException {}
        assertThrows(Crash.class, () -> CompressionRun.run(request(resumed, casp(BitAllocation.Mode.MEASURED, true), false),
                new SequentialCompressor.Listener() {
                    @Override public void blockDone(BlockResult b, Calibration a) {
                        if (b.layer() == 1) throw new Crash();
                    }
                }, LOG));
        CompressionRun.Outcome r = CompressionRun.run(request(resumed, casp(BitAllocation.Mode.MEASURED, true), true), null, LOG);
        assertEquals(2, r.resumedFromBlock());
        assertEquals(o.effectiveBits(), r.effectiveBits());
        SafeTensorsFile fa = SafeTensorsFile.open(out.resolve("model.safetensors")), fb = SafeTensorsFile.open(resumed.resolve("model.safetensors"));
        assertEquals(fa.tensors().keySet(), fb.tensors().keySet());
        for (String name : fa.tensors().keySet()) assertArrayEquals(fa.readBytes(name), fb.readBytes(name), name);
    }

    /**
     * Shared codebooks: one set per linear name and width, stored by the first layer with it; the
     * stored bits recounted from the arrays equal the plan's, the folder holds each set once and
     * reloads to the same weights.
     */
    @Test
    void sharedCodebooksAreStoredOnceCountedAndReloaded(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("sh");
        CaspPlan.Options o = new CaspPlan.Options("aqlm", 2, CaspPlan.RankRule.RATIO, 0.25, 0.05, BitAllocation.Mode.MEASURED, true, 3, 0,
                false, false, true, AQ, true, true);
        CompressionRun.Outcome oc = CompressionRun.run(request(out, o, false), null, LOG);
        JsonNode budget = oc.report().get("casp").get("budget");
        long stored = budget.get("stored_bits").asLong();
        assertEquals(CaspCompression.storedBits(oc.blocks()), stored);
        assertEquals(budget.get("planned_bits").asLong(), stored, "costs are known exactly in advance");
        assertTrue(stored <= budget.get("budget_bits").asLong(), "within plain AQLM's bits");
        Map<String, AqlmWeight> owners = new LinkedHashMap<>();
        Map<String, Integer> ownerLayer = new LinkedHashMap<>();
        long recount = 0, codebookBits = 0;
        int sharers = 0, wide = 0;
        for (BlockResult b : oc.blocks()) {
            for (LinearResult r : b.linears()) {
                if (r.lowRank() != null) {
                    recount += r.lowRank().storageBits();
                    continue;
                }
                AqlmWeight a = (AqlmWeight) r.stored();
                String set = r.name() + "/" + r.bits();
                if (r.bits() == 3) wide++;
                if (!a.sharesCodebooks()) {
                    assertNull(owners.put(set, a), "one owner per set: " + set);
                    ownerLayer.put(set, r.layer());
                    recount += counted(a);
                    codebookBits += 16L * a.codebooks.length - 32;
                } else {
                    sharers++;
                    assertEquals(ownerLayer.get(set), a.codebooksLayer, set + " in layer " + r.layer());
                    assertArrayEquals(owners.get(set).codebooks, a.codebooks, 0f, set);
                    AqlmTensors t = a.tensors();
                    recount += (long) t.codes().length * t.codebookBits() + 16L * t.scales().length + 32;
                }
            }
        }
        assertEquals(stored, recount);
        assertEquals(budget.get("shared_codebook_bits").asLong(), codebookBits);
        assertTrue(sharers > 10, "most linears share: " + sharers);
        assertTrue(wide > 0, "the saved bits widen linears");

        WeightStore ws = WeightStore.open(out);
        LlamaModel loaded = LlamaModel.load(ModelFolder.open(out));
        for (BlockResult b : oc.blocks()) {
            for (LinearResult r : b.linears()) {
                if (r.lowRank() != null) continue;
                String prefix = "model.layers." + r.layer() + "." + r.name();
                boolean shares = ((AqlmWeight) r.stored()).sharesCodebooks();
                assertEquals(!shares, ws.has(prefix + ".codebooks"), prefix);
                assertEquals(shares, ws.has(prefix + ".codebooks_layer"), prefix);
                AqlmLinear l = assertInstanceOf(AqlmLinear.class, loaded.layer(r.layer()).linear(r.name()));
                assertArrayEquals(r.stored().dequantize(), l.dequantize(), 0f, prefix);
            }
        }
        assertTrue(oc.report().get("casp").get("summary").asText().contains("codebooks shared across layers"));
    }

    private static long[] firstWide(WeightStore ws, JsonNode casp) {
        var it = casp.get("bits").fields();
        while (it.hasNext()) {
            var e = it.next();
            if (e.getValue().asInt() == 3 && ws.has(e.getKey() + ".codebooks")) return ws.info(e.getKey() + ".codebooks").shape();
        }
        return null;
    }

    /** The written folder, reloaded, runs AQLM linears and GPTQ factors and gives the in-memory compressed model's logits. */
    @Test
    void reloadedFolderGivesTheCompressedModelsLogits(@TempDir Path tmp) throws Exception {
        Path dir = TestData.model("stories260K");
        ModelFolder source = ModelFolder.open(dir);
        int[] ids = Tokenizer.load(dir).encode("Once upon a time, there was a little girl named Lily. She loved to play");
        LlamaModel m = LlamaModel.load(source);
        Calibration calib = Calibration.fromTextFile(m, Tokenizer.load(dir), TestData.file("models/stories260K/reference/eval.txt"), 4, 64, 2);
        CaspCompressionTest.Reloaded r = CaspCompressionTest.compressWriteAndLoad(source, m, calib, AQLM2,
                casp(BitAllocation.Mode.PAPER, true), tmp.resolve("c"));
        CaspCompression c = r.casp();
        LlamaModel loaded = r.loaded();
        int wide = 0;
        for (int l = 0; l < 5; l++) {
            LowRankLinear q = assertInstanceOf(LowRankLinear.class, loaded.layer(l).linear(DecoderLayer.Q));
            assertEquals(c.plan().qRank[l], q.rank());
            assertInstanceOf(QuantizedLinear.class, q.a());
            assertInstanceOf(QuantizedLinear.class, q.b());
            assertEquals(c.plan().kRank[l], assertInstanceOf(LowRankLinear.class, loaded.layer(l).linear(DecoderLayer.K)).rank());
            for (String name : CaspPlan.allocatable(true)) {
                assertInstanceOf(AqlmLinear.class, loaded.layer(l).linear(name), l + " " + name);
                if (c.plan().width(l, name) == 3) wide++;
            }
        }
        assertTrue(wide > 0, "some linears at 3 bits (12 codebooks), read with their own count");
        float[] want = m.forward(ids, null, true), got = loaded.forward(ids, null, true);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < want.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(want[i] - got[i]));
            maxAbs = Math.max(maxAbs, Math.abs(want[i]));
        }
        assertTrue(maxAbs > 1, "logits are not trivial: " + maxAbs);
        assertTrue(maxDiff < 1e-3, "logits of the reloaded model differ by " + maxDiff);
    }
}
