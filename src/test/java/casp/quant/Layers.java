package casp.quant;

import java.util.Random;

/** Random linear layers and calibration Hessians for the quantizer tests. */
public final class Layers {
    private Layers() {}

    /** W [rows, cols] ~ N(0, 0.02^2), with a few outlier weights (x8), like trained layers. */
    public static float[] weights(int rows, int cols, long seed) {
        Random rnd = new Random(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (rnd.nextGaussian() * 0.02 * (rnd.nextInt(200) == 0 ? 8 : 1));
        }
        return w;
    }

    /**
     * H = (2/N) X^T X in float64 for N tokens of correlated inputs: each token mixes `cols` latent
     * factors through a dense random matrix, channels have log-normal scales (some are outliers),
     * and the listed dead channels are exactly zero. Full rank when tokens >= cols.
     */
    public static double[] hessian(int cols, int tokens, long seed, int... deadChannels) {
        Random rnd = new Random(seed);
        double[][] mix = new double[cols][cols];
        for (int k = 0; k < cols; k++) {
            for (int c = 0; c < cols; c++) mix[k][c] = (k == c ? 1 : 0) + 0.6 * rnd.nextGaussian() / Math.sqrt(cols);
        }
        double[] channelScale = new double[cols];
        for (int c = 0; c < cols; c++) channelScale[c] = Math.exp(0.8 * rnd.nextGaussian());
        for (int d : deadChannels) channelScale[d] = 0;
        double[] h = new double[cols * cols];
        double[] z = new double[cols], x = new double[cols];
        for (int t = 0; t < tokens; t++) {
            // latent factors with a decaying spectrum: strongly correlated inputs
            for (int k = 0; k < cols; k++) z[k] = rnd.nextGaussian() / Math.sqrt(1 + 0.2 * k);
            for (int c = 0; c < cols; c++) {
                double s = 0;
                for (int k = 0; k < cols; k++) s += z[k] * mix[k][c];
                x[c] = s * channelScale[c];
            }
            for (int i = 0; i < cols; i++) {
                if (x[i] == 0) continue;
                for (int j = 0; j < cols; j++) h[i * cols + j] += x[i] * x[j];
            }
        }
        for (int i = 0; i < h.length; i++) h[i] *= 2.0 / tokens;
        return h;
    }
}
