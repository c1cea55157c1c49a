package casp.eval;

import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.ForwardHooks;
import casp.model.HalfLinear;
import casp.model.InputCapture;
import casp.model.Linear;
import casp.model.LlamaModel;
import casp.quant.lowrank.LowRankLinear;
import casp.quant.lowrank.LowRankQK;

import java.util.ArrayList;
import java.util.List;

/**
 * The quantity CASP rests on (ALGORITHMS.md section 4): how sparse the attention maps
 * S = softmax(Q K^T / sqrt(d) + causal mask) are, how much of their mass sits on visual tokens,
 * and how much they change, MSE(S - S'), when W_q and W_k are replaced by whitened low-rank
 * factors at given rank ratios.
 *
 * <p>Definitions (per layer and head, pooled over the inputs of a group):
 * <ul>
 *   <li>sparsity(tau): the fraction of causal entries (j <= t) of S below tau;</li>
 *   <li>visual mass: the mean, over query rows t at or after the first visual token, of the
 *       attention mass row t puts on visual positions (0 for inputs without visual tokens);</li>
 *   <li>MSE(S - S'): the mean over causal entries of (S - S')^2, where S' comes from the same layer
 *       on the same input (the uncompressed model's hidden state) with only q_proj and k_proj
 *       replaced by {@link LowRankLinear}s; so each layer's figure is that layer's own error, not
 *       the accumulation of all earlier layers'.</li>
 * </ul>
 * The low-rank factors are dense (no quantization) and built from the q/k input statistics of the
 * calibration inputs on the uncompressed model, with the paper's rank rule per ratio.
 *
 * <p>Method: layer by layer, every input's hidden state is run through the layer once as is
 * (recording its attention maps) and once per ratio with the low-rank q/k swapped in (on a copy
 * of the same hidden state); then the unmodified output becomes the next layer's input. Only one
 * layer's maps are held at a time. The counting loops are plain Java: they are a small part of the
 * time next to the forward passes.
 */
public final class AttentionSparsity {
    private AttentionSparsity() {}

    /**
     * One input sequence: input embeddings [tokens, hidden] (a LLaVA input has the image features
     * merged in) and which positions are visual (null: none).
     */
    public record Input(float[] embeddings, int tokens, boolean[] visual) {
        public Input {
            if (tokens < 1 || embeddings.length % tokens != 0) throw new IllegalArgumentException("embeddings do not hold " + tokens + " rows");
            if (visual != null && visual.length != tokens) throw new IllegalArgumentException("visual mask has " + visual.length + " entries, expected " + tokens);
        }

        /** Fraction of positions that are visual. */
        public double visualShare() {
            if (visual == null) return 0;
            int n = 0;
            for (boolean v : visual) if (v) n++;
            return (double) n / tokens;
        }
    }

    /**
     * @param tau     sparsity threshold (0.01 by default)
     * @param ratios  rank ratios rho of the low-rank Q/K (may be empty: no MSE)
     * @param binEdges ascending edges of the visual-share bins, from 0 to 1 (e.g. 0, 0.2, ..., 1);
     *                the last bin includes 1
     */
    public record Options(double tau, double[] ratios, double[] binEdges) {
        public Options {
            if (!(tau > 0 && tau < 1)) throw new IllegalArgumentException("tau must be in (0, 1), got " + tau);
            for (double r : ratios) if (!(r > 0 && r <= 1)) throw new IllegalArgumentException("rank ratio must be in (0, 1], got " + r);
            if (binEdges.length < 2 || binEdges[0] != 0 || binEdges[binEdges.length - 1] != 1)
                throw new IllegalArgumentException("bin edges must run from 0 to 1");
            for (int i = 1; i < binEdges.length; i++) if (!(binEdges[i] > binEdges[i - 1])) throw new IllegalArgumentException("bin edges must ascend");
        }

        public static Options defaults(double... ratios) {
            return new Options(0.01, ratios, new double[]{0, 0.2, 0.4, 0.6, 0.8, 1});
        }

        public int bins() {
            return binEdges.length - 1;
        }

        /** The bin of a visual share. */
        public int bin(double share) {
            for (int b = 0; b < bins() - 1; b++) if (share < binEdges[b + 1]) return b;
            return bins() - 1;
        }
    }

    /** Pooled counts of one (group, layer, head). */
    public static final class Cell {
        long entries, below;
        long queryRows;
        double visualMass;
        final double[] sqErr;

        Cell(int ratios) {
            sqErr = new double[ratios];
        }

        public double sparsity() { return entries == 0 ? Double.NaN : (double) below / entries; }

        public double visualMass() { return queryRows == 0 ? 0 : visualMass / queryRows; }

        public double mse(int ratio) { return entries == 0 ? Double.NaN : sqErr[ratio] / entries; }

        public long entries() { return entries; }

        void add(Cell o) {
            entries += o.entries;
            below += o.below;
            queryRows += o.queryRows;
            visualMass += o.visualMass;
            for (int i = 0; i < sqErr.length; i++) sqErr[i] += o.sqErr[i];
        }
    }

    /** Results: cells[group][layer][head], group = bin of the inputs' visual share; plus "all". */
    public static final class Result {
        public final Options options;
        public final int layers, heads;
        /** [bins][layers][heads]. */
        final Cell[][][] cells;
        /** Inputs per bin, and the mean visual share of each bin's inputs. */
        public final int[] inputsPerBin;
        public final double[] meanShare;
        /** Ranks used per ratio: [ratio][layer] for q and k. */
        public final int[][] qRank, kRank;
        /** Relative whitened truncation losses per ratio and layer (q and k). */
        public final double[][] qLoss, kLoss;

        Result(Options options, int layers, int heads, Cell[][][] cells, int[] inputsPerBin, double[] meanShare,
               int[][] qRank, int[][] kRank, double[][] qLoss, double[][] kLoss) {
            this.options = options;
            this.layers = layers;
            this.heads = heads;
            this.cells = cells;
            this.inputsPerBin = inputsPerBin;
            this.meanShare = meanShare;
            this.qRank = qRank;
            this.kRank = kRank;
            this.qLoss = qLoss;
            this.kLoss = kLoss;
        }

        /** The cell of a bin (-1: all inputs), layer and head (-1: all heads pooled). */
        public Cell cell(int bin, int layer, int head) {
            Cell c = new Cell(options.ratios().length);
            for (int b = 0; b < cells.length; b++) {
                if (bin >= 0 && b != bin) continue;
                for (int h = 0; h < heads; h++) if (head < 0 || h == head) c.add(cells[b][layer][h]);
            }
            return c;
        }

        /** Pooled over all layers and heads of a bin (-1: all). */
        public Cell total(int bin) {
            Cell c = new Cell(options.ratios().length);
            for (int l = 0; l < layers; l++) c.add(cell(bin, l, -1));
            return c;
        }
    }

    /** Progress callback: called after each layer. */
    public interface Listener {
        void layerDone(int layer, int layers);
    }

    /**
     * Runs the analysis. The model is used, not modified (q/k are swapped in and back out).
     *
     * @param calibration inputs whose q/k statistics build the low-rank factors (may be the same list)
     */
    public static Result analyze(LlamaModel model, List<Input> inputs, List<Input> calibration, Options opt, Listener listener) {
        int L = model.numLayers(), heads = model.config().numHeads(), d = model.hiddenSize();
        int nr = opt.ratios().length;
        for (Input in : inputs) if (in.embeddings().length != in.tokens() * d) throw new IllegalArgumentException("input rows are not " + d + " wide");
        // Low-rank factors for every ratio and layer, from the uncompressed model's q/k input statistics.
        double[][] g = new double[L][];
        if (nr > 0) g = qkStatistics(model, calibration);
        LowRankLinear[][] q = new LowRankLinear[nr][L], k = new LowRankLinear[nr][L];
        int[][] qRank = new int[nr][L], kRank = new int[nr][L];
        double[][] qLoss = new double[nr][L], kLoss = new double[nr][L];
        for (int l = 0; l < L; l++) {
            if (nr == 0) break;
            DecoderLayer layer = model.layer(l);
            DenseLinear wq = dense(layer.linear(DecoderLayer.Q), l, "q_proj"), wk = dense(layer.linear(DecoderLayer.K), l, "k_proj");
            LowRankQK.Whitening wh = LowRankQK.Whitening.of(g[l], d);
            int maxQ = 0, maxK = 0;
            for (double rho : opt.ratios()) {
                maxQ = Math.max(maxQ, LowRankQK.rankForRatio(wq.out(), wq.in(), rho));
                maxK = Math.max(maxK, LowRankQK.rankForRatio(wk.out(), wk.in(), rho));
            }
            LowRankQK.Decomposition dq = LowRankQK.decompose(wq.weight(), wq.out(), wq.in(), wh, maxQ, LowRankQK.Options.defaults());
            LowRankQK.Decomposition dk = LowRankQK.decompose(wk.weight(), wk.out(), wk.in(), wh, maxK, LowRankQK.Options.defaults());
            g[l] = null;
            for (int r = 0; r < nr; r++) {
                int rq = LowRankQK.rankForRatio(wq.out(), wq.in(), opt.ratios()[r]);
                int rk = LowRankQK.rankForRatio(wk.out(), wk.in(), opt.ratios()[r]);
                qRank[r][l] = rq;
                kRank[r][l] = rk;
                qLoss[r][l] = dq.relativeLoss(rq);
                kLoss[r][l] = dk.relativeLoss(rk);
                LowRankQK.Factors fq = dq.factors(rq), fk = dk.factors(rk);
                q[r][l] = LowRankLinear.dense(fq.m(), rq, fq.n(), fq.a(), fq.b());
                k[r][l] = LowRankLinear.dense(fk.m(), rk, fk.n(), fk.a(), fk.b());
            }
        }

        int bins = opt.bins();
        Cell[][][] cells = new Cell[bins][L][heads];
        for (Cell[][] cb : cells) for (Cell[] cl : cb) for (int h = 0; h < heads; h++) cl[h] = new Cell(nr);
        int[] perBin = new int[bins];
        double[] shareSum = new double[bins];
        int[] binOf = new int[inputs.size()];
        List<float[]> hidden = new ArrayList<>(inputs.size());
        for (int i = 0; i < inputs.size(); i++) {
            Input in = inputs.get(i);
            double s = in.visualShare();
            binOf[i] = opt.bin(s);
            perBin[binOf[i]]++;
            shareSum[binOf[i]] += s;
            hidden.add(in.embeddings().clone());
        }
        double[] meanShare = new double[bins];
        for (int b = 0; b < bins; b++) meanShare[b] = perBin[b] == 0 ? Double.NaN : shareSum[b] / perBin[b];

        for (int l = 0; l < L; l++) {
            DecoderLayer layer = model.layer(l);
            Linear origQ = layer.linear(DecoderLayer.Q), origK = layer.linear(DecoderLayer.K);
            for (int i = 0; i < inputs.size(); i++) {
                Input in = inputs.get(i);
                int T = in.tokens();
                float[] x = hidden.get(i);
                float[] copy = nr > 0 ? x.clone() : null;
                MapsHook ref = new MapsHook(l, heads, T);
                layer.forward(x, T, 0, null, ref); // x becomes the next layer's input
                Cell[] cl = cells[binOf[i]][l];
                for (int h = 0; h < heads; h++) countMaps(ref.maps[h], T, in.visual(), opt.tau(), cl[h]);
                for (int r = 0; r < nr; r++) {
                    float[] y = r == nr - 1 ? copy : copy.clone();
                    MapsHook cmp = new MapsHook(l, heads, T);
                    try {
                        layer.setLinear(DecoderLayer.Q, q[r][l]);
                        layer.setLinear(DecoderLayer.K, k[r][l]);
                        layer.forward(y, T, 0, null, cmp);
                    } finally {
                        layer.setLinear(DecoderLayer.Q, origQ);
                        layer.setLinear(DecoderLayer.K, origK);
                    }
                    for (int h = 0; h < heads; h++) cl[h].sqErr[r] += squaredDifference(ref.maps[h], cmp.maps[h], T);
                }
            }
            if (listener != null) listener.layerDone(l + 1, L);
        }
        return new Result(opt, L, heads, cells, perBin, meanShare, qRank, kRank, qLoss, kLoss);
    }

    private static DenseLinear dense(Linear l, int layer, String name) {
        DenseLinear d = HalfLinear.dense(l);
        if (d != null) return d;
        throw new IllegalArgumentException("layer " + layer + " " + name + " is not a float32 linear: analyse an uncompressed model");
    }

    /** G = sum x x^T of the q/k input of every layer, over the calibration inputs (float64). */
    static double[][] qkStatistics(LlamaModel model, List<Input> calibration) {
        int L = model.numLayers();
        InputCapture c = InputCapture.allLayers(model, DecoderLayer.QKV);
        for (Input in : calibration) model.forwardHidden(in.embeddings().clone(), in.tokens(), null, c);
        double[][] g = new double[L][];
        for (int l = 0; l < L; l++) g[l] = c.get(l, DecoderLayer.QKV).sum();
        return g;
    }

    /** Copies the attention maps of one layer ([heads][T * T], row t = query). */
    private static final class MapsHook implements ForwardHooks {
        final int layer;
        final float[][] maps;
        final int T;

        MapsHook(int layer, int heads, int T) {
            this.layer = layer;
            this.T = T;
            this.maps = new float[heads][];
        }

        @Override public boolean wantsAttention(int l) { return l == layer; }

        @Override
        public void attentionProbs(int l, int head, float[] probs, int rows, int keys, int startPos) {
            if (l != layer || startPos != 0 || rows != T || keys != T) throw new IllegalStateException("unexpected attention call");
            maps[head] = java.util.Arrays.copyOf(probs, T * T);
        }
    }

    /** Adds one map's causal entries, entries below tau and visual mass to the cell. */
    static void countMaps(float[] s, int T, boolean[] visual, double tau, Cell c) {
        int firstVisual = -1;
        if (visual != null) for (int j = 0; j < T && firstVisual < 0; j++) if (visual[j]) firstVisual = j;
        for (int t = 0; t < T; t++) {
            int row = t * T;
            long below = 0;
            for (int j = 0; j <= t; j++) if (s[row + j] < tau) below++;
            c.below += below;
            c.entries += t + 1;
            if (firstVisual >= 0 && t >= firstVisual) {
                double m = 0;
                for (int j = firstVisual; j <= t; j++) if (visual[j]) m += s[row + j];
                c.visualMass += m;
                c.queryRows++;
            }
        }
    }

    /** Sum over causal entries of (a - b)^2. */
    static double squaredDifference(float[] a, float[] b, int T) {
        double e = 0;
        for (int t = 0; t < T; t++) {
            int row = t * T;
            for (int j = 0; j <= t; j++) {
                double d = (double) a[row + j] - b[row + j];
                e += d * d;
            }
        }
        return e;
    }
}
