package casp.eval;

import casp.io.BadInputException;
import casp.kernel.Activations;
import casp.model.ForwardHooks;
import casp.model.LlamaModel;
import casp.model.LlavaModel;

import java.util.Arrays;
import java.util.List;

/**
 * KL divergence of a model's next-token distributions from a reference model's (ALGORITHMS.md
 * section 9): KL(p_ref || p_model) = sum_i p_ref(i) (log p_ref(i) - log p_model(i)), averaged
 * over the evaluated positions. It shows small compression damage long before perplexity or
 * accuracy move. Computed in float64 from the logits (log-softmax of each, never exponentiating
 * the model's logits), so it is 0 for identical logits and never negative beyond rounding.
 *
 * <p>{@link #between} and {@link Mean} are the reusable parts (any evaluation that has both
 * models' logits at the same positions, e.g. VQA answers); {@link #evaluate} is the perplexity
 * protocol with a reference.
 */
public final class KlDivergence {
    private KlDivergence() {}

    /**
     * KL(softmax(ref) || softmax(model)) of one position, vocab logits each. The per-token loop is
     * scalar float64 on purpose: it needs double precision (the terms cancel to ~1e-6 for small
     * damage) and costs a vocab-length pass per position, negligible beside the forward pass.
     */
    public static double between(float[] ref, int refOff, float[] model, int modelOff, int vocab) {
        return between(ref, refOff, Activations.logSumExp(ref, refOff, vocab), model, modelOff,
                Activations.logSumExp(model, modelOff, vocab), vocab);
    }

    /** As {@link #between(float[], int, float[], int, int)} with both log-sum-exps given. */
    static double between(float[] ref, int refOff, double lseRef, float[] model, int modelOff, double lseModel, int vocab) {
        double kl = 0;
        for (int i = 0; i < vocab; i++) {
            double lr = ref[refOff + i] - lseRef;
            double lm = model[modelOff + i] - lseModel;
            kl += Math.exp(lr) * (lr - lm);
        }
        return Math.max(0, kl); // the exact value is >= 0; rounding can leave -1e-17
    }

    /** A running mean (and maximum) of per-position KL divergences. */
    public static final class Mean {
        private double sum, max;
        private long count;

        /** Adds rows positions: logits row-major [rows, vocab] of the reference and of the model. */
        public void add(float[] ref, int refOff, float[] model, int modelOff, int rows, int vocab) {
            for (int r = 0; r < rows; r++) add(between(ref, refOff + r * vocab, model, modelOff + r * vocab, vocab));
        }

        /** Adds one position's divergence. */
        public void add(double kl) {
            sum += kl;
            max = Math.max(max, kl);
            count++;
        }

        public long count() { return count; }

        /** Mean over the positions added (NaN when none). */
        public double mean() { return count == 0 ? Double.NaN : sum / count; }

        public double max() { return max; }
    }

    /**
     * For {@link VqaEvaluator.Options#answerLogits}: runs the reference LLaVA model teacher-forced on
     * the same conversation and adds KL(p_reference || p_model) at every answer position to mean.
     */
    public static VqaEvaluator.AnswerLogitsListener againstReference(LlavaModel reference, Mean mean) {
        return (index, sample, answerIds, logits, vocab) -> {
            if (reference.language().vocabSize() != vocab)
                throw new BadInputException("the reference model has vocabulary " + reference.language().vocabSize() + ", the model " + vocab);
            LlavaModel.Media media = reference.encode(sample.image(), sample.video(), 0);
            int[] full = reference.promptIds(sample.messages(true), false, media);
            int rows = answerIds.length, start = full.length - rows;
            if (start < 1 || !Arrays.equals(full, start, full.length, answerIds, 0, rows))
                throw new BadInputException("sample " + sample.id() + ": the reference model tokenizes the answer differently");
            float[] x = reference.embed(full, media);
            reference.language().forwardHidden(x, full.length, null, ForwardHooks.NONE);
            float[] ref = new float[rows * vocab];
            reference.language().logits(x, start - 1, rows, ref, 0);
            mean.add(ref, 0, logits, 0, rows, vocab);
        };
    }

    /** Perplexity of the model and its KL to the reference at the same scored positions. */
    public record Result(Perplexity.Result perplexity, double meanKl, double maxKl, long positions) {}

    /**
     * The perplexity protocol of {@link Perplexity#evaluate} (same windows, same scored positions,
     * same NLL arithmetic, so the ppl equals Perplexity.evaluate's) run on model and reference side
     * by side; the KL is averaged over the scored positions.
     */
    public static Result evaluate(LlamaModel model, LlamaModel reference, int[] tokens, int ctx, Perplexity.Listener listener) {
        if (ctx < 2) throw new IllegalArgumentException("ctx must be at least 2, got " + ctx);
        if (model.vocabSize() != reference.vocabSize())
            throw new BadInputException("the reference model has vocabulary " + reference.vocabSize() + ", the model " + model.vocabSize());
        int windows = tokens.length / ctx;
        if (windows == 0) throw new IllegalArgumentException(tokens.length + " tokens are fewer than one window of " + ctx);
        int vocab = model.vocabSize(), rowsMax = Math.min(Perplexity.LOGIT_ROWS, ctx);
        float[] x = new float[Math.multiplyExact(ctx, model.hiddenSize())];
        float[] xr = new float[Math.multiplyExact(ctx, reference.hiddenSize())];
        float[] logits = new float[Math.multiplyExact(rowsMax, vocab)];
        float[] refLogits = new float[logits.length];
        double nll = 0;
        Mean kl = new Mean();
        long t0 = System.nanoTime();
        for (int w = 0; w < windows; w++) {
            int start = w * ctx;
            model.embed(tokens, start, ctx, x, 0);
            model.forwardHidden(x, ctx, null, ForwardHooks.NONE);
            reference.embed(tokens, start, ctx, xr, 0);
            reference.forwardHidden(xr, ctx, null, ForwardHooks.NONE);
            for (int r0 = 0; r0 < ctx - 1; r0 += Perplexity.LOGIT_ROWS) {
                int rows = Math.min(Perplexity.LOGIT_ROWS, ctx - 1 - r0);
                model.logits(x, r0, rows, logits, 0);
                reference.logits(xr, r0, rows, refLogits, 0);
                for (int r = 0; r < rows; r++) {
                    int target = tokens[start + r0 + r + 1];
                    double lse = Activations.logSumExp(logits, r * vocab, vocab);
                    nll += lse - logits[r * vocab + target];
                    kl.add(between(refLogits, r * vocab, Activations.logSumExp(refLogits, r * vocab, vocab),
                            logits, r * vocab, lse, vocab));
                }
            }
            if (listener != null) listener.windowDone(w + 1, windows);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        long scored = (long) windows * (ctx - 1);
        Perplexity.Result p = new Perplexity.Result(Math.exp(nll / scored), nll, scored, (long) windows * ctx, windows, ctx, seconds);
        return new Result(p, kl.mean(), kl.max(), kl.count());
    }
}
