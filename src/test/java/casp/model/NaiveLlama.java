package casp.model;

import casp.io.ModelConfig;
import casp.io.WeightStore;

/**
 * An obviously-correct Llama forward pass for tests: plain loops in double precision, written
 * from the Hugging Face modeling code (LlamaRMSNorm, rotate_half / apply_rotary_pos_emb,
 * repeat_kv, eager attention, LlamaMLP, _compute_llama3_parameters), sharing no code with the
 * model package. Reads its weights straight from a {@link WeightStore}.
 */
final class NaiveLlama {
    final ModelConfig.TextConfig c;
    final WeightStore w;
    final String prefix, head;

    /** What one forward pass saw: per layer, the q/k/v input rows and per head the attention probabilities. */
    double[][][] qkvInput;       // [layer][t][hidden]
    double[][][][] probs;        // [layer][head][t][key]

    NaiveLlama(ModelConfig.TextConfig c, WeightStore w, String prefix, String head) {
        this.c = c;
        this.w = w;
        this.prefix = prefix;
        this.head = head;
    }

    double[] vec(String name) {
        float[] f = w.floats(name);
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    double[][] mat(String name, int rows, int cols) {
        float[] f = w.floats(name);
        if (f.length != rows * cols) throw new AssertionError(name + " size " + f.length);
        double[][] m = new double[rows][cols];
        for (int r = 0; r < rows; r++) for (int k = 0; k < cols; k++) m[r][k] = f[r * cols + k];
        return m;
    }

    static double[] linear(double[][] W, double[] b, double[] x) {
        double[] y = new double[W.length];
        for (int o = 0; o < W.length; o++) {
            double s = b == null ? 0 : b[o];
            for (int i = 0; i < x.length; i++) s += W[o][i] * x[i];
            y[o] = s;
        }
        return y;
    }

    double[] rmsnorm(double[] x, double[] g) {
        double ss = 0;
        for (double v : x) ss += v * v;
        double inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = g[i] * x[i] * inv;
        return y;
    }

    /** inv_freq as transformers computes it, with the "llama3" rule when configured. */
    double[] invFreq() {
        int dim = c.headDim();
        double[] f = new double[dim / 2];
        for (int i = 0; i < f.length; i++) f[i] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / dim);
        ModelConfig.RopeScaling s = c.ropeScaling();
        if (s == null) return f;
        if (s.type().equals("linear")) { // _compute_linear_scaling_rope_parameters: inv_freq / factor
            for (int i = 0; i < f.length; i++) f[i] /= s.factor();
            return f;
        }
        double lowWl = s.originalMaxPositions() / s.lowFreqFactor();
        double highWl = s.originalMaxPositions() / s.highFreqFactor();
        for (int i = 0; i < f.length; i++) {
            double wl = 2 * Math.PI / f[i];
            double llama = wl > lowWl ? f[i] / s.factor() : f[i];
            double smooth = (s.originalMaxPositions() / wl - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
            double smoothed = (1 - smooth) * llama / s.factor() + smooth * llama;
            boolean medium = !(wl < highWl) && !(wl > lowWl);
            f[i] = medium ? smoothed : llama;
        }
        return f;
    }

    /** q * cos + rotate_half(q) * sin for one head vector at position pos. */
    static double[] rope(double[] x, int pos, double[] inv) {
        int half = x.length / 2;
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double ang = pos * inv[i % half];
            double rot = i < half ? -x[i + half] : x[i - half];
            y[i] = x[i] * Math.cos(ang) + rot * Math.sin(ang);
        }
        return y;
    }

    /** Logits [T][vocab] of every position of ids, from position 0. */
    double[][] forward(int[] ids) {
        double[][] emb = mat(prefix + "embed_tokens.weight", c.vocabSize(), c.hiddenSize());
        double[][] h = new double[ids.length][];
        for (int t = 0; t < ids.length; t++) h[t] = emb[ids[t]].clone();
        return forwardEmbeddings(h);
    }

    /** Logits [T][vocab] of every position for input embeddings h [T][hidden] (overwritten). */
    double[][] forwardEmbeddings(double[][] h) {
        int T = h.length, d = c.hiddenSize(), H = c.numHeads(), G = c.numKvHeads(), hd = c.headDim();
        int inter = c.intermediateSize(), V = c.vocabSize();
        double[] inv = invFreq();
        qkvInput = new double[c.numLayers()][][];
        probs = new double[c.numLayers()][H][T][T];
        for (int l = 0; l < c.numLayers(); l++) {
            String p = prefix + "layers." + l + ".";
            double[][] Wq = mat(p + "self_attn.q_proj.weight", H * hd, d), Wk = mat(p + "self_attn.k_proj.weight", G * hd, d),
                    Wv = mat(p + "self_attn.v_proj.weight", G * hd, d), Wo = mat(p + "self_attn.o_proj.weight", d, H * hd);
            double[] bq = w.has(p + "self_attn.q_proj.bias") ? vec(p + "self_attn.q_proj.bias") : null;
            double[] bk = w.has(p + "self_attn.k_proj.bias") ? vec(p + "self_attn.k_proj.bias") : null;
            double[] bv = w.has(p + "self_attn.v_proj.bias") ? vec(p + "self_attn.v_proj.bias") : null;
            double[][] Wg = mat(p + "mlp.gate_proj.weight", inter, d), Wu = mat(p + "mlp.up_proj.weight", inter, d),
                    Wd = mat(p + "mlp.down_proj.weight", d, inter);
            double[] g1 = vec(p + "input_layernorm.weight"), g2 = vec(p + "post_attention_layernorm.weight");

            double[][][] q = new double[T][H][], k = new double[T][G][], v = new double[T][G][];
            qkvInput[l] = new double[T][];
            for (int t = 0; t < T; t++) {
                double[] x = rmsnorm(h[t], g1);
                qkvInput[l][t] = x;
                double[] qa = linear(Wq, bq, x), ka = linear(Wk, bk, x), va = linear(Wv, bv, x);
                for (int a = 0; a < H; a++) q[t][a] = rope(java.util.Arrays.copyOfRange(qa, a * hd, (a + 1) * hd), t, inv);
                for (int g = 0; g < G; g++) {
                    k[t][g] = rope(java.util.Arrays.copyOfRange(ka, g * hd, (g + 1) * hd), t, inv);
                    v[t][g] = java.util.Arrays.copyOfRange(va, g * hd, (g + 1) * hd);
                }
            }
            for (int t = 0; t < T; t++) {
                double[] att = new double[H * hd];
                for (int a = 0; a < H; a++) {
                    int g = a / (H / G);
                    double[] s = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= t; j++) {
                        double dot = 0;
                        for (int i = 0; i < hd; i++) dot += q[t][a][i] * k[j][g][i];
                        s[j] = dot / Math.sqrt(hd);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= t; j++) sum += s[j] = Math.exp(s[j] - max);
                    for (int j = 0; j <= t; j++) {
                        double pj = s[j] / sum;
                        probs[l][a][t][j] = pj;
                        for (int i = 0; i < hd; i++) att[a * hd + i] += pj * v[j][g][i];
                    }
                }
                double[] o = linear(Wo, null, att);
                for (int i = 0; i < d; i++) h[t][i] += o[i];
            }
            for (int t = 0; t < T; t++) {
                double[] x = rmsnorm(h[t], g2);
                double[] gt = linear(Wg, null, x), up = linear(Wu, null, x);
                double[] a = new double[inter];
                for (int i = 0; i < inter; i++) a[i] = gt[i] / (1 + Math.exp(-gt[i])) * up[i];
                double[] y = linear(Wd, null, a);
                for (int i = 0; i < d; i++) h[t][i] += y[i];
            }
        }
        double[] gn = vec(prefix + "norm.weight");
        double[][] Wh = mat(head, V, d);
        double[][] logits = new double[T][];
        for (int t = 0; t < T; t++) logits[t] = linear(Wh, null, rmsnorm(h[t], gn));
        return logits;
    }
}
