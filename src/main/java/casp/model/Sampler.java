package casp.model;

import casp.kernel.Activations;
import casp.kernel.VectorOps;

import java.util.SplittableRandom;

/**
 * Picks the next token from logits: argmax at temperature 0, otherwise a draw from
 * softmax(logits / temperature) with a seeded generator (same seed, same tokens).
 */
public final class Sampler {
    private final float temperature;
    private final SplittableRandom random;
    private float[] probs = new float[0];

    public Sampler(float temperature, long seed) {
        if (!(temperature >= 0) || Float.isInfinite(temperature))
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        this.temperature = temperature;
        this.random = new SplittableRandom(seed);
    }

    /** Greedy decoding. */
    public static Sampler greedy() {
        return new Sampler(0f, 0);
    }

    public float temperature() { return temperature; }

    /** The chosen token id among logits[off, off+n). logits are not modified. */
    public int sample(float[] logits, int off, int n) {
        if (temperature == 0f) return VectorOps.argmax(logits, off, n);
        if (probs.length < n) probs = new float[n];
        System.arraycopy(logits, off, probs, 0, n);
        VectorOps.scale(probs, 0, n, 1f / temperature);
        Activations.softmax(probs, 0, n);
        double u = random.nextDouble(), cum = 0;
        for (int i = 0; i < n; i++) {
            cum += probs[i];
            if (u < cum) return i;
        }
        // Rounding left the cumulative sum just under u: take the last token with any mass.
        for (int i = n - 1; i >= 0; i--) if (probs[i] > 0) return i;
        return n - 1;
    }
}
