package casp.eval;

import casp.io.BadInputException;
import casp.io.LlavaDataset;
import casp.kernel.Activations;
import casp.model.ForwardHooks;
import casp.model.LlavaModel;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Visual question answering on LLaVA conversation data: for each sample, the greedy answer to
 * the conversation's last question (exact match after lower-casing and stripping punctuation)
 * and the teacher-forced negative log-likelihood of the reference answer's tokens.
 *
 * <p>The answer tokens are what the chat template adds when the reference answer is appended:
 * the ids of the rendered whole conversation after the ids of the rendered prompt (with the
 * generation prompt). For LLaVA-1.5 templates that is the answer plus {@code </s>}, as the
 * reference models count them.
 */
public final class VqaEvaluator {
    private VqaEvaluator() {}

    /**
     * Receives the teacher-forced logits of each sample's answer tokens ([rows, vocab], row r
     * predicting answer token r): the hook for comparisons against a reference model (e.g. KL).
     */
    public interface AnswerLogitsListener {
        void accept(int index, LlavaDataset.Sample sample, int[] answerIds, float[] logits, int vocab);
    }

    /** Called after each sample (progress bars). */
    public interface Listener {
        void onSample(int done, int total, SampleResult result);
    }

    /**
     * @param limit         evaluate at most this many samples (from the start; <= 0: all)
     * @param maxNewTokens  greedy answer length limit
     * @param stopStrings   generation also stops once the answer text contains one of these
     * @param answerLogits  optional hook (null for none)
     */
    public record Options(int limit, int maxNewTokens, List<String> stopStrings, AnswerLogitsListener answerLogits) {
        public Options {
            stopStrings = List.copyOf(stopStrings);
        }

        public static Options defaults() {
            return new Options(0, 64, List.of(), null);
        }
    }

    /** One sample's outcome; type is the record's "question_type" (or null). */
    public record SampleResult(String id, String type, String question, String gold, String prediction, boolean correct,
                               double answerNll, int answerTokens) {}

    /** Accuracy per question type (when the data has "question_type"). */
    public record TypeResult(int n, double accuracy, double answerPpl) {}

    public record Result(int n, double accuracy, double answerPpl, double meanAnswerNll, long answerTokens,
                         Map<String, TypeResult> byType, List<SampleResult> samples, double seconds) {}

    /** Evaluates samples in order; every sample must end with a "gpt" answer and have an image or a video. */
    public static Result evaluate(LlavaModel model, List<LlavaDataset.Sample> data, Options opt, Listener listener) {
        int n = opt.limit() > 0 ? Math.min(opt.limit(), data.size()) : data.size();
        if (n == 0) throw new BadInputException("no samples to evaluate");
        long t0 = System.nanoTime();
        List<SampleResult> results = new ArrayList<>(n);
        double nllSum = 0;
        long tokens = 0;
        int correct = 0;
        for (int i = 0; i < n; i++) {
            LlavaDataset.Sample s = data.get(i);
            SampleResult r = evaluateOne(model, i, s, opt);
            results.add(r);
            nllSum += r.answerNll();
            tokens += r.answerTokens();
            if (r.correct()) correct++;
            if (listener != null) listener.onSample(i + 1, n, r);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return new Result(n, (double) correct / n, Math.exp(nllSum / tokens), nllSum / tokens, tokens, byType(results),
                results, seconds);
    }

    private static Map<String, TypeResult> byType(List<SampleResult> results) {
        Map<String, double[]> acc = new LinkedHashMap<>(); // n, correct, nll, tokens
        for (SampleResult r : results) {
            if (r.type() == null) continue;
            double[] a = acc.computeIfAbsent(r.type(), k -> new double[4]);
            a[0]++;
            if (r.correct()) a[1]++;
            a[2] += r.answerNll();
            a[3] += r.answerTokens();
        }
        Map<String, TypeResult> out = new LinkedHashMap<>();
        acc.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> out.put(e.getKey(), new TypeResult((int) e.getValue()[0], e.getValue()[1] / e.getValue()[0],
                        Math.exp(e.getValue()[2] / e.getValue()[3]))));
        return out;
    }

    /** Greedy answer and teacher-forced answer NLL of one sample. */
    public static SampleResult evaluateOne(LlavaModel model, int index, LlavaDataset.Sample s, Options opt) {
        String gold = s.answer();
        if (gold == null) throw new BadInputException("sample " + s.id() + ": the conversation does not end with a \"gpt\" answer");
        if (s.image() == null && s.video() == null) throw new BadInputException("sample " + s.id() + ": has no image or video");
        LlavaModel.Media media = model.encode(s.image(), s.video(), 0);
        int[] prompt = model.promptIds(s.messages(false), true, media);
        int[] full = model.promptIds(s.messages(true), false, media);
        int start = prompt.length;
        // The prompt's ids must be a prefix of the whole conversation's; otherwise the answer's
        // first token merged with the prompt's last and the split is not well defined.
        if (full.length <= start || !Arrays.equals(full, 0, start, prompt, 0, start))
            throw new BadInputException("sample " + s.id() + ": the tokenized prompt is not a prefix of the tokenized "
                    + "conversation with its answer; cannot tell the answer tokens apart");
        int maxPos = model.language().config().maxPositions();
        if (full.length > maxPos)
            throw new BadInputException("sample " + s.id() + ": " + full.length + " tokens exceed the model's "
                    + maxPos + " positions");

        // Teacher forcing: logits of positions start-1 .. full.length-2 predict the answer tokens.
        float[] x = model.embed(full, media);
        model.language().forwardHidden(x, full.length, null, ForwardHooks.NONE);
        int rows = full.length - start, vocab = model.language().vocabSize();
        float[] logits = new float[rows * vocab];
        model.language().logits(x, start - 1, rows, logits, 0);
        double nll = 0;
        for (int r = 0; r < rows; r++)
            nll += Activations.logSumExp(logits, r * vocab, vocab) - logits[r * vocab + full[start + r]];
        if (opt.answerLogits() != null)
            opt.answerLogits().accept(index, s, Arrays.copyOfRange(full, start, full.length), logits, vocab);

        LlavaModel.Answer a = model.generate(prompt, media, opt.maxNewTokens(), opt.stopStrings());
        boolean ok = normalize(a.text()).equals(normalize(gold));
        String type = s.raw() != null && s.raw().hasNonNull("question_type") ? s.raw().get("question_type").asText() : null;
        return new SampleResult(s.id(), type, s.question(), gold, a.text(), ok, nll, rows);
    }

    /** Lower-cased, punctuation removed, whitespace collapsed: the exact-match comparison form. */
    public static String normalize(String s) {
        String t = Normalizer.normalize(s, Normalizer.Form.NFKC).toLowerCase(java.util.Locale.ROOT);
        t = t.replaceAll("\\p{P}", "");
        return t.replaceAll("\\s+", " ").strip();
    }
}
