package casp.eval;

import casp.kernel.Activations;
import casp.model.ForwardHooks;
import casp.model.LlamaModel;

/**
 * Perplexity by the protocol of ALGORITHMS.md section 9: the token stream (encoded once) is cut
 * into non-overlapping windows of ctx tokens, the remainder dropped; each window runs on its own
 * from position 0; inside a window token t+1 is scored with -log softmax(logits_t)[token t+1]
 * for t = 0 .. ctx-2 (log-softmax in float64); ppl = exp(sum of NLL / number scored).
 */
public final class Perplexity {
    private Perplexity() {}

    /** Called after each window. */
    public interface Listener {
        void windowDone(int done, int total);
    }

    /**
     * Result: ppl, tokensScored = windows * (ctx - 1), tokensProcessed = windows * ctx (what went
     * through the model), seconds of wall time.
     */
    public record Result(double ppl, double nllSum, long tokensScored, long tokensProcessed, int windows, int ctx,
                         double seconds) {
        public double meanNll() { return nllSum / tokensScored; }

        /** Tokens through the model per second. */
        public double tokensPerSecond() { return seconds > 0 ? tokensProcessed / seconds : Double.NaN; }
    }

    /** Rows of logits computed at once (bounds the memory for large vocabularies). */
    static final int LOGIT_ROWS = 64;

    /** Evaluates tokens; needs at least one full window (ctx >= 2). */
    public static Result evaluate(LlamaModel model, int[] tokens, int ctx, Listener listener) {
        if (ctx < 2) throw new IllegalArgumentException("ctx must be at least 2, got " + ctx);
        int windows = tokens.length / ctx;
        if (windows == 0) throw new IllegalArgumentException(tokens.length + " tokens are fewer than one window of " + ctx);
        int d = model.hiddenSize(), vocab = model.vocabSize();
        float[] x = new float[Math.multiplyExact(ctx, d)];
        float[] logits = new float[Math.multiplyExact(Math.min(LOGIT_ROWS, ctx), vocab)];
        double nll = 0;
        long t0 = System.nanoTime();
        for (int w = 0; w < windows; w++) {
            int start = w * ctx;
            model.embed(tokens, start, ctx, x, 0);
            model.forwardHidden(x, ctx, null, ForwardHooks.NONE);
            // Rows 0 .. ctx-2 predict tokens 1 .. ctx-1 of the window; the last row predicts nothing.
            for (int r0 = 0; r0 < ctx - 1; r0 += LOGIT_ROWS) {
                int rows = Math.min(LOGIT_ROWS, ctx - 1 - r0);
                model.logits(x, r0, rows, logits, 0);
                for (int r = 0; r < rows; r++) {
                    int target = tokens[start + r0 + r + 1];
                    nll += Activations.logSumExp(logits, r * vocab, vocab) - logits[r * vocab + target];
                }
            }
            if (listener != null) listener.windowDone(w + 1, windows);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        long scored = (long) windows * (ctx - 1);
        return new Result(Math.exp(nll / scored), nll, scored, (long) windows * ctx, windows, ctx, seconds);
    }
}
