package casp.model;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Autoregressive generation with a KV cache: one batched prefill of the prompt, then one
 * decoding step per new token, reusing the same buffers (no allocation per token).
 */
public final class Generator {
    private final LlamaModel model;
    private Stats last = new Stats(0, 0, 0, 0);

    /** Timings of the last generation: prefill of promptTokens, then decodeSteps single-token steps. */
    public record Stats(int promptTokens, double prefillSeconds, int decodeSteps, double decodeSeconds) {
        public double prefillTokensPerSecond() { return promptTokens / prefillSeconds; }

        public double decodeTokensPerSecond() { return decodeSteps / decodeSeconds; }
    }

    public Generator(LlamaModel model) {
        this.model = model;
    }

    /** Generation from token ids (see {@link #generate(float[], int, int, Sampler, int[], IntPredicate)}). */
    public int[] generate(int[] promptIds, int maxNewTokens, Sampler sampler, int[] stopIds, IntPredicate onToken) {
        if (promptIds.length == 0) throw new IllegalArgumentException("the prompt needs at least one token (e.g. BOS)");
        return generate(model.embed(promptIds), promptIds.length, maxNewTokens, sampler, stopIds, onToken);
    }

    /**
     * Generates up to maxNewTokens tokens after a prompt given as input embeddings ([T, hidden],
     * overwritten), at most as many as the model's max positions leave room for. Stops after a
     * token of stopIds (e.g. the EOS ids; it is included in the result; null or empty for none)
     * or when onToken (called with each new id as it is produced, may be null) returns false.
     * Returns the new ids.
     */
    public int[] generate(float[] promptEmbeddings, int T, int maxNewTokens, Sampler sampler, int[] stopIds, IntPredicate onToken) {
        if (T < 1) throw new IllegalArgumentException("the prompt needs at least one position");
        int room = Math.max(0, model.config().maxPositions() - T);
        int steps = Math.min(maxNewTokens, room);
        if (steps <= 0) return new int[0];
        // The last new token is sampled but never fed back, so the cache needs T + steps - 1 positions.
        KvCache cache = model.newCache(T + steps);
        int vocab = model.vocabSize();
        long t0 = System.nanoTime();
        float[] logits = model.forwardEmbeddings(promptEmbeddings, T, cache, false);
        long t1 = System.nanoTime(), decodeNanos = 0;
        int[] out = new int[steps];
        int n = 0, decoded = 0;
        while (true) {
            int next = sampler.sample(logits, 0, vocab);
            out[n++] = next;
            boolean more = onToken == null || onToken.test(next);
            if (!more || n == steps || isStop(next, stopIds)) break;
            long s = System.nanoTime();
            model.decode(next, cache, logits);
            decodeNanos += System.nanoTime() - s;   // the callback's time (printing) is not the model's
            decoded++;
        }
        last = new Stats(T, (t1 - t0) / 1e9, decoded, decodeNanos / 1e9);
        return Arrays.copyOf(out, n);
    }

    /** Timings of the last {@link #generate} call. */
    public Stats lastStats() { return last; }

    private static boolean isStop(int id, int[] stopIds) {
        if (stopIds != null) for (int s : stopIds) if (s == id) return true;
        return false;
    }
}
