package casp.compress;

import casp.kernel.QuantOps;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.ForwardHooks;
import casp.model.HalfLinear;
import casp.model.InputCapture;
import casp.model.Linear;
import casp.model.LlamaModel;
import casp.quant.CompressedLayer;
import casp.quant.ProxyError;
import casp.quant.Quantizer;
import casp.quant.lowrank.LowRankQK;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * The measurements CASP's choices rest on, taken on the uncompressed model before the sequential
 * compression (ALGORITHMS.md section 5):
 * <ul>
 *   <li>each decoder layer's importance, its block influence BI = mean over calibration tokens of
 *       1 - cos(h_in, h_out) of the residual stream (ShortGPT);</li>
 *   <li>each allocatable linear's distortion at each candidate width: the relative proxy error
 *       tr(dW H dW^T) / tr(W H W^T) of the backend's result, times its layer's BI;</li>
 *   <li>the whitened SVDs of W_q and W_k ({@link LowRankQK}), for the per-layer rank rules;</li>
 *   <li>optionally each layer's attention sparsity per head, the fraction of causal entries of
 *       S = softmax(Q K^T / sqrt(d) + mask) below tau (ALGORITHMS.md section 4), for the sparsity
 *       rank rule.</li>
 * </ul>
 * Layer by layer: the samples (copied, not modified) are run through one layer at a time with
 * hooks that accumulate its four input Hessians; the layer's outputs become the next layer's
 * inputs. So only one layer's statistics are held at a time, as in the sequential compressor; the
 * measurements are of the uncompressed model (first order: the errors of earlier layers are not
 * fed forward here).
 */
public final class AllocationProbe {
    private AllocationProbe() {}

    /** A calibration sequence: input embeddings [tokens, hidden]. */
    public record Sample(float[] hidden, int tokens) {}

    /**
     * What was measured.
     *
     * @param influence   BI per layer
     * @param distortion  per layer, linear name -> importance-weighted distortion at each width
     * @param proxyError  per layer, linear name -> relative proxy error at each width (unweighted)
     * @param q           whitened SVD of each layer's W_q (null when not asked for)
     * @param k           likewise W_k
     * @param sparsity       attention sparsity [layer][head] at tau (null when not asked for)
     * @param seconds        wall time of the measurement
     * @param forwardSeconds the part spent running the layers on the samples (Hessians included)
     */
    public record Measurements(int[] widths, double[] influence, List<Map<String, double[]>> distortion,
                               List<Map<String, double[]>> proxyError, LowRankQK.Decomposition[] q,
                               LowRankQK.Decomposition[] k, double[][] sparsity, double seconds, double forwardSeconds) {
        /** Layer l's attention sparsity, the mean over its heads. */
        public double layerSparsity(int l) {
            double s = 0;
            for (double h : sparsity[l]) s += h;
            return s / sparsity[l].length;
        }
    }

    /** Progress callback after each layer. */
    public interface Listener {
        void layerDone(int layer, int layers);
    }

    /** Receives the measurements of the layers done so far and the next layer's inputs, after each layer. */
    public interface LayerSink {
        void layerMeasured(Measurements soFar, ActivationStore nextInputs) throws IOException;
    }

    /**
     * How a measurement is split: the layers measured by an earlier part (done, or null; the samples
     * given are then the inputs of the first layer it lacks), where each layer's results go (sink,
     * or null), and how many layers this part measures before it stops (maxLayers, 0: all). Only
     * measurements without q/k spectra can be split.
     */
    public record Split(Measurements done, LayerSink sink, int maxLayers) {
        int firstLayer() {
            return done == null ? 0 : done.influence().length;
        }
    }

    /** Thrown when a split measurement stops after its maxLayers (the sink has the layers done). */
    public static final class Stopped extends RuntimeException {
        private final int layersDone, layers;

        Stopped(int layersDone, int layers) {
            super("stopped after measuring " + layersDone + " of " + layers + " layers");
            this.layersDone = layersDone;
            this.layers = layers;
        }

        public int layersDone() { return layersDone; }

        public int layers() { return layers; }
    }

    /**
     * Measures.
     *
     * @param linears    names of the linears whose distortions are measured (e.g. all but q/k)
     * @param widths     candidate widths
     * @param quantizer  width -> a function from the linear's input width to the backend quantizer
     * @param qkMaxRank  rank up to which the q/k SVDs keep triplets (0: no SVDs); input widths
     *                   m x n get min(qkMaxRank, min(m, n))
     */
    public static Measurements measure(LlamaModel model, List<Sample> samples, List<String> linears, int[] widths,
                                       IntFunction<IntFunction<Quantizer>> quantizer, int qkMaxRank, LowRankQK.Options svd,
                                       Listener listener) {
        return measure(model, samples, linears, widths, quantizer, qkMaxRank, svd, 0, listener);
    }

    /**
     * {@link #measure(LlamaModel, List, List, int[], IntFunction, int, LowRankQK.Options, Listener)}
     * that also counts attention sparsity at tau per layer and head when tau > 0 (pooled over the
     * causal entries of every sample's maps).
     */
    public static Measurements measure(LlamaModel model, List<Sample> samples, List<String> linears, int[] widths,
                                       IntFunction<IntFunction<Quantizer>> quantizer, int qkMaxRank, LowRankQK.Options svd,
                                       double tau, Listener listener) {
        int d = model.hiddenSize();
        try (ActivationStore hidden = new ActivationStore(d, ActivationStore.Settings.inMemory())) {
            for (Sample s : samples) {
                if (s.hidden().length != (long) s.tokens() * d) throw new IllegalArgumentException("sample rows are not " + d + " wide");
                hidden.add(s.hidden().clone(), s.tokens());
            }
            return measure(model, hidden, null, linears, widths, quantizer, qkMaxRank, svd, tau, listener);
        }
    }

    /**
     * As {@link #measure(LlamaModel, List, List, int[], IntFunction, int, LowRankQK.Options, double, Listener)}
     * on a working copy of the samples (overwritten: it ends holding the last layer's outputs), with
     * each layer's weights read before it is measured and dropped after when weights is not null.
     */
    public static Measurements measure(LlamaModel model, ActivationStore hidden, BlockWeights weights, List<String> linears,
                                       int[] widths, IntFunction<IntFunction<Quantizer>> quantizer, int qkMaxRank,
                                       LowRankQK.Options svd, double tau, Listener listener) {
        return measure(model, hidden, weights, linears, widths, quantizer, qkMaxRank, svd, tau, listener, null);
    }

    /**
     * As {@link #measure(LlamaModel, ActivationStore, BlockWeights, List, int[], IntFunction, int, LowRankQK.Options, double, Listener)},
     * in parts (split, or null for the whole at once): from the first layer split.done lacks, with
     * split.sink told after every layer; throws {@link Stopped} after split.maxLayers layers when
     * layers remain.
     */
    public static Measurements measure(LlamaModel model, ActivationStore hidden, BlockWeights weights, List<String> linears,
                                       int[] widths, IntFunction<IntFunction<Quantizer>> quantizer, int qkMaxRank,
                                       LowRankQK.Options svd, double tau, Listener listener, Split split) {
        long t0 = System.nanoTime();
        int L = model.numLayers(), d = model.hiddenSize();
        if (hidden.hidden() != d) throw new IllegalArgumentException("sample rows are not " + d + " wide");
        if (split != null && qkMaxRank > 0) throw new IllegalArgumentException("a measurement with q/k spectra cannot be split");
        Measurements done = split == null ? null : split.done();
        int first = split == null ? 0 : split.firstLayer();
        if (done != null && (first > L || !java.util.Arrays.equals(done.widths(), widths) || (done.sparsity() != null) != (tau > 0)))
            throw new IllegalArgumentException("the layers measured before do not match this measurement");
        double[] bi = new double[L];
        List<Map<String, double[]>> dist = new ArrayList<>(), proxy = new ArrayList<>();
        LowRankQK.Decomposition[] qd = new LowRankQK.Decomposition[L], kd = new LowRankQK.Decomposition[L];
        float[] scratch = new float[hidden.maxLength()], in = new float[hidden.maxLength()];
        long forwardNanos = 0;
        double[][] sparsity = tau > 0 ? new double[L][] : null;
        double before = 0, forwardBefore = 0;
        if (done != null) {
            System.arraycopy(done.influence(), 0, bi, 0, first);
            dist.addAll(done.distortion());
            proxy.addAll(done.proxyError());
            if (sparsity != null) System.arraycopy(done.sparsity(), 0, sparsity, 0, first);
            before = done.seconds();
            forwardBefore = done.forwardSeconds();
        }
        for (int l = first; l < L; l++) {
            DecoderLayer layer = model.layer(l);
            if (weights != null) weights.load(layer);
            InputCapture g = new InputCapture();
            for (List<String> group : List.of(DecoderLayer.QKV, DecoderLayer.O_IN, DecoderLayer.GATE_UP, DecoderLayer.DOWN_IN))
                g.capture(l, group, layer.linear(group.get(0)).in());
            final int li = l;
            int heads = model.config().numHeads();
            long[] below = new long[heads], entries = new long[heads];
            ForwardHooks hooks = new ForwardHooks() {
                @Override
                public void linearInput(int layerIndex, List<String> names, float[] x, int rows, int cols) {
                    g.linearInput(layerIndex, names, x, rows, cols);
                }

                @Override
                public boolean wantsAttention(int layerIndex) {
                    return tau > 0 && layerIndex == li;
                }

                @Override
                public void attentionProbs(int layerIndex, int head, float[] probs, int rows, int keys, int startPos) {
                    for (int t = 0; t < rows; t++) {
                        int causal = startPos + t + 1;
                        for (int j = 0; j < causal; j++) if (probs[t * keys + j] < tau) below[head]++;
                        entries[head] += causal;
                    }
                }
            };
            double cosSum = 0;
            long tokens = 0;
            long f0 = System.nanoTime();
            for (int i = 0; i < hidden.size(); i++) {
                float[] x = hidden.load(i, scratch);
                int T = hidden.tokens(i);
                System.arraycopy(x, 0, in, 0, T * d);
                layer.forward(x, T, 0, null, hooks);
                hidden.write(i, x);
                for (int t = 0; t < T; t++) {
                    double dot = QuantOps.dot(in, t * d, x, t * d, d);
                    double na = QuantOps.dot(in, t * d, in, t * d, d), nb = QuantOps.dot(x, t * d, x, t * d, d);
                    cosSum += na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 1;
                }
                tokens += T;
            }
            forwardNanos += System.nanoTime() - f0;
            bi[l] = 1 - cosSum / tokens;
            if (sparsity != null) {
                sparsity[l] = new double[heads];
                for (int h = 0; h < heads; h++) sparsity[l][h] = entries[h] == 0 ? 0 : (double) below[h] / entries[h];
            }
            Map<String, double[]> dl = new LinkedHashMap<>(), pl = new LinkedHashMap<>();
            for (String name : linears) {
                DenseLinear w = dense(layer.linear(name), l, name);
                double[] h = g.get(l, groupOf(name)).sum();
                double[] pe = new double[widths.length], de = new double[widths.length];
                for (int c = 0; c < widths.length; c++) {
                    CompressedLayer q = quantizer.apply(widths[c]).apply(w.in()).quantize(w.weight(), w.out(), w.in(), h);
                    pe[c] = ProxyError.relative(w.weight(), q.dequantize(), w.out(), w.in(), h);
                    de[c] = bi[l] * pe[c];
                }
                dl.put(name, de);
                pl.put(name, pe);
            }
            dist.add(dl);
            proxy.add(pl);
            if (qkMaxRank > 0) {
                double[] h = g.get(l, DecoderLayer.QKV).sum();
                LowRankQK.Whitening wh = LowRankQK.Whitening.of(h, d);
                DenseLinear wq = dense(layer.linear(DecoderLayer.Q), l, DecoderLayer.Q), wk = dense(layer.linear(DecoderLayer.K), l, DecoderLayer.K);
                qd[l] = LowRankQK.decompose(wq.weight(), wq.out(), wq.in(), wh, qkMaxRank, svd);
                kd[l] = LowRankQK.decompose(wk.weight(), wk.out(), wk.in(), wh, qkMaxRank, svd);
            }
            if (weights != null) weights.release(layer);
            if (listener != null) listener.layerDone(l + 1, L);
            if (split != null && split.sink() != null && l + 1 < L) {
                int n = l + 1;
                Measurements soFar = new Measurements(widths.clone(), java.util.Arrays.copyOf(bi, n), List.copyOf(dist), List.copyOf(proxy),
                        null, null, sparsity == null ? null : java.util.Arrays.copyOf(sparsity, n),
                        before + (System.nanoTime() - t0) / 1e9, forwardBefore + forwardNanos / 1e9);
                try {
                    split.sink().layerMeasured(soFar, hidden);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            if (split != null && split.maxLayers() > 0 && l + 1 - first == split.maxLayers() && l + 1 < L) throw new Stopped(l + 1, L);
        }
        return new Measurements(widths.clone(), bi, dist, proxy, qkMaxRank > 0 ? qd : null, qkMaxRank > 0 ? kd : null, sparsity,
                before + (System.nanoTime() - t0) / 1e9, forwardBefore + forwardNanos / 1e9);
    }

    /** The input group a linear belongs to. */
    static List<String> groupOf(String name) {
        for (List<String> g : List.of(DecoderLayer.QKV, DecoderLayer.O_IN, DecoderLayer.GATE_UP, DecoderLayer.DOWN_IN)) {
            if (g.contains(name)) return g;
        }
        throw new IllegalArgumentException("unknown linear " + name);
    }

    private static DenseLinear dense(Linear l, int layer, String name) {
        DenseLinear d = HalfLinear.dense(l);
        if (d != null) return d;
        throw new IllegalArgumentException("layer " + layer + " " + name + " is not a float32 linear");
    }
}
