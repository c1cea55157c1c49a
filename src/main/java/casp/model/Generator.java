package casp.model;

import java.util.Arrays;
import java.util.function.IntPredicate;

/**
 * Autoregressive generation with a KV cache: one batched prefill of the prompt, then one
 * decoding step per new token, reusing the same buffers (no allocation per token).
 */
public final class Generator {
    private final LlamaModel model;

    public Generator(LlamaModel model) {
        this.model = model;
    }

    /** Generation from token ids (see {@link #generate(float[], int, int, Sampler, int, IntPredicate)}). */
    public int[] generate(int[] promptIds, int maxNewTokens, Sampler sampler, int eosId, IntPredicate onToken) {
        if (promptIds.length == 0) throw new IllegalArgumentException("the prompt needs at least one token (e.g. BOS)");
        return generate(model.embed(promptIds), promptIds.length, maxNewTokens, sampler, eosId, onToken);
    }

    /**
     * Generates up to maxNewTokens tokens after a prompt given as input embeddings ([T, hidden],
     * overwritten), at most as many as the model's max positions leave room for. Stops after
     * eosId (which is included; pass -1 for none) or when onToken (called with each new id as it
     * is produced, may be null) returns false. Returns the new ids.
     */
    public int[] generate(float[] promptEmbeddings, int T, int maxNewTokens, Sampler sampler, int eosId, IntPredicate onToken) {
        int room = Math.max(0, model.config().maxPositions() - T);
        int steps = Math.min(maxNewTokens, room);
        if (steps <= 0) return new int[0];
        // The last new token is sampled but never fed back, so the cache needs T + steps - 1 positions.
        KvCache cache = model.newCache(T + steps);
        int vocab = model.vocabSize();
        float[] logits = model.forwardEmbeddings(promptEmbeddings, T, cache, false);
        int[] out = new int[steps];
        int n = 0;
        while (true) {
            int next = sampler.sample(logits, 0, vocab);
            out[n++] = next;
            boolean more = onToken == null || onToken.test(next);
            if (!more || next == eosId || n == steps) break;
            model.decode(next, cache, logits);
        }
        return Arrays.copyOf(out, n);
    }
}
