package casp.model;

import casp.io.ModelConfig;
import casp.kernel.VectorOps;

import java.util.Arrays;

/**
 * Rotary position embedding in the Hugging Face convention (rotate half; cos/sin shared by the
 * two halves), with rope_theta and the "llama3" or "linear" rope_scaling. The cos/sin tables are computed in
 * float32 as Hugging Face does (inverse frequencies in float32, angle = float(pos * inv_freq)) and
 * grown on demand, so a long max_position_embeddings costs nothing until it is used.
 */
public final class RotaryEmbedding {
    private final int half;
    private final float[] invFreq;
    private float[] cos = new float[0], sin = new float[0];
    private int positions;

    public RotaryEmbedding(ModelConfig.TextConfig c) {
        this(c.headDim(), c.ropeTheta(), c.ropeScaling());
    }

    public RotaryEmbedding(int headDim, double theta, ModelConfig.RopeScaling scaling) {
        if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        this.half = headDim / 2;
        this.invFreq = inverseFrequencies(headDim, theta, scaling);
    }

    /** inv_freq[i] = theta^(-2i/d), adjusted by llama3 scaling (transformers' _compute_llama3_parameters). */
    static float[] inverseFrequencies(int headDim, double theta, ModelConfig.RopeScaling scaling) {
        int half = headDim / 2;
        float[] f = new float[half];
        for (int i = 0; i < half; i++) f[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / headDim));
        // transformers' linear scaling divides inv_freq (float32) by the factor: positions are compressed by it.
        if (scaling != null && scaling.type().equals("linear"))
            for (int i = 0; i < half; i++) f[i] = f[i] / (float) scaling.factor();
        if (scaling != null && scaling.type().equals("llama3")) {
            double factor = scaling.factor(), lowF = scaling.lowFreqFactor(), highF = scaling.highFreqFactor();
            double old = scaling.originalMaxPositions();
            double lowWavelen = old / lowF, highWavelen = old / highF;
            for (int i = 0; i < half; i++) {
                double inv = f[i];
                double wavelen = 2 * Math.PI / inv;
                double out;
                if (wavelen < highWavelen) out = inv;                 // high frequency: unchanged
                else if (wavelen > lowWavelen) out = inv / factor;    // low frequency: scaled down
                else {                                                // in between: interpolate
                    double smooth = (old / wavelen - lowF) / (highF - lowF);
                    out = (1 - smooth) * inv / factor + smooth * inv;
                }
                f[i] = (float) out;
            }
        }
        return f;
    }

    /** Makes sure positions [0, n) have tables. Not thread-safe: call before parallel work. */
    public void ensure(int n) {
        if (n <= positions) return;
        int np = Math.max(n, Math.min(Math.max(2 * positions, 64), Integer.MAX_VALUE / Math.max(1, half)));
        float[] c = Arrays.copyOf(cos, np * half), s = Arrays.copyOf(sin, np * half);
        for (int p = positions; p < np; p++)
            for (int i = 0; i < half; i++) {
                float angle = (float) p * invFreq[i];
                c[p * half + i] = (float) Math.cos(angle);
                s[p * half + i] = (float) Math.sin(angle);
            }
        cos = c;
        sin = s;
        positions = np;
    }

    /** Rotates heads consecutive head vectors of x starting at off, all at position pos. */
    public void apply(float[] x, int off, int heads, int pos) {
        ensure(pos + 1);
        int hd = 2 * half;
        for (int h = 0; h < heads; h++) VectorOps.ropeRotateHalf(x, off + h * hd, cos, sin, pos * half, half);
    }

    /** The inverse frequencies (a copy). */
    public float[] inverseFrequencies() { return invFreq.clone(); }
}
