package casp.model;

import casp.TestData;
import casp.compress.AllocationProbe;
import casp.io.ModelFolder;
import casp.quant.lowrank.LowRankQK;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The allocation probe's attention sparsity per layer and head against the double-precision NaiveLlama's maps (lives here for NaiveLlama). */
class ProbeSparsityNaiveTest {

    @Test
    void probeSparsityMatchesTheNaiveMapsPooledOverTwoSamples() {
        ModelFolder f = ModelFolder.open(TestData.model("stories260K"));
        LlamaModel model = LlamaModel.load(f);
        int[] lengths = {33, 17};
        int[][] ids = new int[lengths.length][];
        for (int s = 0; s < lengths.length; s++) {
            ids[s] = SyntheticModelTest.randomIds(lengths[s], model.vocabSize(), 11 + s);
            ids[s][0] = 1;
        }
        double tau = 0.01;
        AllocationProbe.Measurements m = AllocationProbe.measure(model,
                List.of(new AllocationProbe.Sample(model.embed(ids[0]), lengths[0]), new AllocationProbe.Sample(model.embed(ids[1]), lengths[1])),
                List.of(), new int[]{2, 3}, bits -> in -> null, 0, LowRankQK.Options.defaults(), tau, null);
        int heads = f.config().text().numHeads();
        long[][] below = new long[model.numLayers()][heads], near = new long[model.numLayers()][heads];
        long entries = 0;
        for (int s = 0; s < lengths.length; s++) {
            NaiveLlama naive = new NaiveLlama(f.config().text(), f.weights(), f.textPrefix(), f.lmHead());
            naive.forward(ids[s]);
            for (int l = 0; l < model.numLayers(); l++) {
                for (int h = 0; h < heads; h++) {
                    for (int t = 0; t < lengths[s]; t++) {
                        for (int j = 0; j <= t; j++) {
                            double p = naive.probs[l][h][t][j];
                            if (p < tau) below[l][h]++;
                            if (Math.abs(p - tau) < 1e-5) near[l][h]++;
                        }
                    }
                }
            }
            entries += (long) lengths[s] * (lengths[s] + 1) / 2;
        }
        assertEquals(model.numLayers(), m.sparsity().length);
        for (int l = 0; l < model.numLayers(); l++) {
            double mean = 0;
            for (int h = 0; h < heads; h++) {
                // float32 and float64 maps may fall on different sides of tau only for entries next to it
                assertEquals((double) below[l][h] / entries, m.sparsity()[l][h], (near[l][h] + 0.5) / entries, "layer " + l + " head " + h);
                mean += m.sparsity()[l][h] / heads;
            }
            assertEquals(mean, m.layerSparsity(l), 1e-12);
        }
    }
}
