package casp.model;

import casp.TestData;
import casp.eval.AttentionSparsity;
import casp.io.ModelFolder;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** casp.eval.AttentionSparsity against the double-precision NaiveLlama's attention maps (lives here for NaiveLlama). */
class AttentionSparsityNaiveTest {

    @Test
    void sparsityAndVisualMassMatchTheNaiveMapsOnStories260K() {
        ModelFolder f = ModelFolder.open(TestData.model("stories260K"));
        LlamaModel model = LlamaModel.load(f);
        int T = 37;
        int[] ids = SyntheticModelTest.randomIds(T, model.vocabSize(), 3);
        ids[0] = 1;
        boolean[] visual = new boolean[T];
        for (int t = 4; t < 15; t++) visual[t] = true;
        NaiveLlama naive = new NaiveLlama(f.config().text(), f.weights(), f.textPrefix(), f.lmHead());
        naive.forward(ids);
        double tau = 0.01;
        AttentionSparsity.Result r = AttentionSparsity.analyze(model, List.of(new AttentionSparsity.Input(model.embed(ids), T, visual)),
                List.of(), new AttentionSparsity.Options(tau, new double[0], new double[]{0, 0.5, 1}), null);
        assertEquals(1, r.inputsPerBin[0]);
        for (int l = 0; l < model.numLayers(); l++) {
            for (int h = 0; h < r.heads; h++) {
                long below = 0, entries = 0, nearTau = 0, rows = 0;
                double mass = 0;
                for (int t = 0; t < T; t++) {
                    for (int j = 0; j <= t; j++) {
                        double p = naive.probs[l][h][t][j];
                        entries++;
                        if (p < tau) below++;
                        if (Math.abs(p - tau) < 1e-5) nearTau++;
                    }
                    if (t >= 4) {
                        rows++;
                        for (int j = 4; j < Math.min(15, t + 1); j++) mass += naive.probs[l][h][t][j];
                    }
                }
                AttentionSparsity.Cell c = r.cell(-1, l, h);
                assertEquals(entries, c.entries());
                assertEquals((double) below / entries, c.sparsity(), (nearTau + 0.5) / entries, "layer " + l + " head " + h);
                assertEquals(mass / rows, c.visualMass(), 1e-4, "layer " + l + " head " + h);
            }
        }
    }
}
