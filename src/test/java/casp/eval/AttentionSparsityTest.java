package casp.eval;

import casp.io.ModelConfig;
import casp.model.LlamaModel;
import casp.model.SyntheticModel;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AttentionSparsityTest {

    @Test
    void countsOfAHandMadeMap() {
        // T = 3, causal rows: [1], [0.995, 0.005], [0.5, 0.3, 0.2]; position 1 visual.
        float[] s = {1, 0, 0, 0.995f, 0.005f, 0, 0.5f, 0.3f, 0.2f};
        AttentionSparsity.Cell c = new AttentionSparsity.Cell(1);
        AttentionSparsity.countMaps(s, 3, new boolean[]{false, true, false}, 0.01, c);
        assertEquals(6, c.entries());
        assertEquals(1.0 / 6, c.sparsity(), 1e-12);
        assertEquals((0.005 + 0.3) / 2, c.visualMass(), 1e-7); // rows 1 and 2
        float[] s2 = s.clone();
        s2[8] = 0.1f;
        s2[7] = 0.4f;
        assertEquals(0.02, AttentionSparsity.squaredDifference(s, s2, 3), 1e-7);
    }

    /** Rank-r matrix [m, n] (product of random factors). */
    static float[] lowRank(int m, int n, int r, SplittableRandom rnd) {
        float[] a = new float[m * r], b = new float[r * n], w = new float[m * n];
        for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextDouble() * 2 - 1);
        for (int i = 0; i < b.length; i++) b[i] = (float) ((rnd.nextDouble() * 2 - 1) / Math.sqrt(n));
        for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
            float s = 0;
            for (int p = 0; p < r; p++) s += a[i * r + p] * b[p * n + j];
            w[i * n + j] = s;
        }
        return w;
    }

    @Test
    void mseVanishesWhenTheRankRuleRecoversExactlyLowRankWeights() {
        // q [32, 32] at rho 0.25 keeps rank 4, k [16, 32] keeps rank 2: make them exactly that low.
        ModelConfig.TextConfig c = SyntheticModel.config("llama", 32, 48, 3, 4, 2, 8, 60, 64, 10000, null, true);
        Map<String, float[]> t = SyntheticModel.tensors(c, 9);
        SplittableRandom rnd = new SplittableRandom(4);
        for (int l = 0; l < 3; l++) {
            t.put("model.layers." + l + ".self_attn.q_proj.weight", lowRank(32, 32, 4, rnd));
            t.put("model.layers." + l + ".self_attn.k_proj.weight", lowRank(16, 32, 2, rnd));
        }
        LlamaModel m = LlamaModel.fromTensors(c, t);
        List<AttentionSparsity.Input> inputs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            int T = 20 + 5 * i;
            int[] ids = new int[T];
            for (int k = 0; k < T; k++) ids[k] = rnd.nextInt(60);
            boolean[] vis = new boolean[T];
            for (int k = 1; k < 1 + 6 * i; k++) vis[k] = true;
            inputs.add(new AttentionSparsity.Input(m.embed(ids), T, vis));
        }
        AttentionSparsity.Result r = AttentionSparsity.analyze(m, inputs, inputs, AttentionSparsity.Options.defaults(0.25, 0.05), null);
        assertEquals(4, r.qRank[0][0]);
        assertEquals(2, r.kRank[0][0]);
        assertEquals(1, r.qRank[1][0]);
        for (int l = 0; l < 3; l++) {
            AttentionSparsity.Cell cell = r.cell(-1, l, -1);
            assertTrue(r.qLoss[0][l] < 1e-9 && r.kLoss[0][l] < 1e-9, "exact rank: no truncation loss");
            assertTrue(cell.mse(0) < 1e-10, "layer " + l + " mse " + cell.mse(0));
            assertTrue(cell.mse(1) > 1e-6, "layer " + l + " rank 1 must change the maps: " + cell.mse(1));
        }
        // Bins by visual share: 0, 6/25 = 0.24, 12/30 = 0.4.
        assertEquals(1, r.inputsPerBin[0]);
        assertEquals(1, r.inputsPerBin[1]);
        assertEquals(1, r.inputsPerBin[2]);
        // The model is left as it was.
        float[] again = m.forward(new int[]{1, 2, 3}, null, false);
        float[] fresh = LlamaModel.fromTensors(c, t).forward(new int[]{1, 2, 3}, null, false);
        for (int i = 0; i < again.length; i++) assertEquals(fresh[i], again[i], 0f);
    }
}
