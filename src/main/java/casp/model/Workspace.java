package casp.model;

import casp.io.ModelConfig;

/**
 * Reusable buffers of one model's forward pass, grown to the largest batch seen so far: the
 * token loop allocates nothing once they have their size. One forward pass at a time per model.
 */
final class Workspace {
    final int d, qDim, kvDim, inter, heads, kvHeads, headDim;
    int rows;          // row capacity of the [rows, *] buffers
    float[] xn, q, k, v, att, tmp, gate, up;
    float[][] probs = new float[0][];   // per attention task, [keys]
    KvCache.Layer temp;                // K/V of a pass without a cache
    final float[] one;                 // hidden state of one decoded token

    Workspace(ModelConfig.TextConfig c) {
        d = c.hiddenSize();
        qDim = c.qDim();
        kvDim = c.kvDim();
        inter = c.intermediateSize();
        heads = c.numHeads();
        kvHeads = c.numKvHeads();
        headDim = c.headDim();
        one = new float[d];
    }

    /** Buffers for T rows. */
    void ensureRows(int T) {
        if (T <= rows) return;
        int r = Math.max(T, rows);
        xn = new float[Math.multiplyExact(r, Math.max(d, qDim))];
        q = new float[Math.multiplyExact(r, qDim)];
        k = new float[Math.multiplyExact(r, kvDim)];
        v = new float[Math.multiplyExact(r, kvDim)];
        att = new float[Math.multiplyExact(r, qDim)];
        tmp = new float[Math.multiplyExact(r, d)];
        gate = new float[Math.multiplyExact(r, inter)];
        up = new float[Math.multiplyExact(r, inter)];
        rows = r;
    }

    /** Attention score scratch for tasks tasks of up to keys keys each. */
    float[][] probs(int tasks, int keys) {
        if (probs.length < tasks || probs[0].length < keys) {
            int n = Math.max(tasks, probs.length);
            int len = Math.max(keys, probs.length == 0 ? 0 : probs[0].length);
            probs = new float[n][len];
        }
        return probs;
    }

    /** A cache for a pass of T positions that has none. */
    KvCache.Layer temp(int T) {
        if (temp == null || temp.capacity() < T) temp = new KvCache.Layer(kvHeads, headDim, Math.max(T, 16));
        return temp;
    }
}
