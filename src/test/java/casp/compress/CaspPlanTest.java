package casp.compress;

import casp.TestData;
import casp.io.Tokenizer;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import casp.quant.Quantizer;
import casp.quant.gptq.Gptq;
import casp.quant.gptq.GptqFormat;
import casp.quant.lowrank.LowRankQK;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CaspPlanTest {
    static LlamaModel model;
    static AllocationProbe.Measurements measured;
    /** stories260K's group rule of the pipeline: per channel at width 64, 86 at width 172. */
    static final CaspPlan.GroupRule GROUPS = w -> w <= 128 ? -1 : 86;
    static final CaspPlan.Backend GPTQ = (bits, in) -> new Gptq(Gptq.Options.defaults(bits).withGroupSize(GROUPS.groupSize(in)));

    @BeforeAll
    static void probe() throws Exception {
        model = LlamaModel.load(TestData.model("stories260K"));
        int[] ids = Tokenizer.load(TestData.model("stories260K")).encode(Files.readString(TestData.file("models/stories260K/reference/eval.txt")));
        List<AllocationProbe.Sample> samples = new ArrayList<>();
        for (int i = 0; i < 4; i++) samples.add(new AllocationProbe.Sample(model.embed(Arrays.copyOfRange(ids, i * 128, (i + 1) * 128)), 128));
        measured = AllocationProbe.measure(model, samples, CaspPlan.allocatable(true), new int[]{2, 3},
                bits -> in -> GPTQ.quantizer(bits, in), 64, LowRankQK.Options.defaults(), 0.01, null);
    }

    static CaspPlan plan(CaspPlan.Options o) {
        return CaspPlan.make(model, o, measured, GPTQ, GROUPS, LowRankQK.Options.defaults());
    }

    static CaspPlan.Options with(BitAllocation.Mode mode, boolean perLinear, CaspPlan.RankRule rule) {
        CaspPlan.Options d = CaspPlan.Options.defaults();
        return new CaspPlan.Options(d.backend(), d.bits(), rule, d.rankRatio(), d.rankThreshold(), mode, perLinear, d.factorBits(),
                d.aBits(), d.rotate(), d.refitA(), d.lowRank());
    }

    @Test
    void probeMeasuresEveryLinearAndLayer() {
        assertEquals(5, measured.influence().length);
        for (double bi : measured.influence()) assertTrue(bi > 0 && bi < 1, "block influence " + bi);
        for (var layer : measured.proxyError()) {
            assertEquals(CaspPlan.allocatable(true), new ArrayList<>(layer.keySet()));
            for (double[] e : layer.values()) assertTrue(e[0] > e[1] && e[1] > 0, "3 bits beat 2 bits: " + Arrays.toString(e));
        }
    }

    @Test
    void everyModeStaysWithinPlainQuantizationsBudget() {
        // Plain 2-bit GPTQ on stories260K: per channel on the 64-wide inputs, groups of 86 on down_proj.
        long plain = 0;
        for (DecoderLayer l : model.layers())
            for (String n : DecoderLayer.LINEARS) plain += GptqFormat.storageBits(l.linear(n).out(), l.linear(n).in(), 2, GROUPS.groupSize(l.linear(n).in()));
        for (BitAllocation.Mode mode : BitAllocation.Mode.values()) {
            for (boolean perLinear : new boolean[]{false, true}) {
                for (CaspPlan.RankRule rule : CaspPlan.RankRule.values()) {
                    CaspPlan p = plan(with(mode, perLinear, rule));
                    assertEquals(plain, p.budgetBits);
                    assertTrue(p.plannedBits() <= plain, mode + " " + perLinear + " " + rule + ": " + p.plannedBits() + " > " + plain);
                    assertTrue(p.plannedEffectiveBits() <= p.budgetEffectiveBits());
                }
            }
        }
    }

    @Test
    void onStoriesNoWholeLayerFitsButSingleLinearsDo() {
        // ALGORITHMS.md 5.4: the low-rank savings of rho = 0.25 cannot pay for a whole layer at 3 bits.
        CaspPlan layer = plan(with(BitAllocation.Mode.MEASURED, false, CaspPlan.RankRule.RATIO));
        for (int u = 0; u < layer.allocation.units().size(); u++) assertEquals(2, layer.allocation.width(u));
        CaspPlan linear = plan(with(BitAllocation.Mode.MEASURED, true, CaspPlan.RankRule.RATIO));
        int wide = 0;
        for (int u = 0; u < linear.allocation.units().size(); u++) if (linear.allocation.width(u) == 3) wide++;
        assertTrue(wide > 0, "some single linears fit the savings");
        assertTrue(linear.allocation.distortion() < layer.allocation.distortion());
    }

    @Test
    void rankRulesAndQuantizers() {
        CaspPlan ratio = plan(with(BitAllocation.Mode.UNIFORM, true, CaspPlan.RankRule.RATIO));
        assertEquals("[8, 8, 8, 8, 8]", Arrays.toString(ratio.qRank));
        assertEquals("[5, 5, 5, 5, 5]", Arrays.toString(ratio.kRank));
        CaspPlan budget = plan(with(BitAllocation.Mode.UNIFORM, true, CaspPlan.RankRule.BUDGET));
        assertEquals(40, Arrays.stream(budget.qRank).sum());
        assertEquals(25, Arrays.stream(budget.kRank).sum());
        double ratioLoss = 0, budgetLoss = 0;
        for (int l = 0; l < 5; l++) {
            ratioLoss += measured.q()[l].truncationLoss(8);
            budgetLoss += measured.q()[l].truncationLoss(budget.qRank[l]);
        }
        assertTrue(budgetLoss <= ratioLoss * (1 + 1e-12));
        // sparsity: the same totals, the density-weighted loss no larger than under the ratio or budget split
        CaspPlan sparsity = plan(with(BitAllocation.Mode.UNIFORM, true, CaspPlan.RankRule.SPARSITY));
        assertEquals(40, Arrays.stream(sparsity.qRank).sum());
        assertEquals(25, Arrays.stream(sparsity.kRank).sum());
        double ratioWeighted = 0, budgetWeighted = 0, sparsityWeighted = 0;
        for (int l = 0; l < 5; l++) {
            double density = 1 - measured.layerSparsity(l);
            assertTrue(density > 0 && density < 1, "density " + density);
            ratioWeighted += density * measured.k()[l].truncationLoss(5);
            budgetWeighted += density * measured.k()[l].truncationLoss(budget.kRank[l]);
            sparsityWeighted += density * measured.k()[l].truncationLoss(sparsity.kRank[l]);
        }
        assertTrue(sparsityWeighted <= Math.min(ratioWeighted, budgetWeighted) * (1 + 1e-12));
        assertInstanceOf(LowRankQuantizer.class, budget.quantizer(2, DecoderLayer.Q));
        assertEquals(budget.qRank[2], ((LowRankQuantizer) budget.quantizer(2, DecoderLayer.Q)).options().rank());
        Quantizer up = budget.quantizer(4, DecoderLayer.UP);
        assertInstanceOf(Gptq.class, up);
        assertEquals(2, up.bits()); // uniform
    }
}
