package casp.model;

import casp.io.ModelConfig;
import casp.kernel.Activations;
import casp.kernel.AttentionKernel;
import casp.kernel.Parallel;
import casp.kernel.VectorOps;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * One Llama decoder layer: h += o_proj(attention(rope(q), rope(k), v)) on RMSNorm(h), then
 * h += down_proj(silu(gate_proj(x)) * up_proj(x)) on RMSNorm(h). Grouped-query attention: head h
 * reads kv head h / (heads / kv_heads). Its seven linears are replaceable by name.
 * Not thread-safe: it shares its model's buffers.
 */
public final class DecoderLayer {
    public static final String Q = "self_attn.q_proj", K = "self_attn.k_proj", V = "self_attn.v_proj",
            O = "self_attn.o_proj", GATE = "mlp.gate_proj", UP = "mlp.up_proj", DOWN = "mlp.down_proj";
    /** The linear layers in execution order, by their Hugging Face names. */
    public static final List<String> LINEARS = List.of(Q, K, V, O, GATE, UP, DOWN);
    /** Linears that read the same input (what {@link ForwardHooks#linearInput} is called with). */
    public static final List<String> QKV = List.of(Q, K, V), O_IN = List.of(O), GATE_UP = List.of(GATE, UP),
            DOWN_IN = List.of(DOWN);

    private final int index;
    private final float[] inputNorm, postNorm;
    private final Map<String, Linear> linears = new LinkedHashMap<>();
    private final RotaryEmbedding rope;
    private final Workspace ws;
    private final int d, heads, kvHeads, hd, qDim, kvDim, inter;
    private final float eps, scale;

    DecoderLayer(int index, ModelConfig.TextConfig c, float[] inputNorm, float[] postNorm, Map<String, Linear> linears,
                 RotaryEmbedding rope, Workspace ws) {
        this.index = index;
        this.inputNorm = inputNorm;
        this.postNorm = postNorm;
        this.rope = rope;
        this.ws = ws;
        d = c.hiddenSize();
        heads = c.numHeads();
        kvHeads = c.numKvHeads();
        hd = c.headDim();
        qDim = c.qDim();
        kvDim = c.kvDim();
        inter = c.intermediateSize();
        eps = c.rmsNormEps();
        scale = (float) (1.0 / Math.sqrt(hd));
        for (String name : LINEARS) {
            Linear l = linears.get(name);
            if (l == null) throw new IllegalArgumentException("layer " + index + ": missing linear " + name);
            checkShape(name, l);
            this.linears.put(name, l);
        }
    }

    public int index() { return index; }

    /** The linear called name (one of {@link #LINEARS}). */
    public Linear linear(String name) {
        Linear l = linears.get(name);
        if (l == null) throw new IllegalArgumentException("no linear named '" + name + "' (expected one of " + LINEARS + ")");
        return l;
    }

    /** Replaces a linear with one of the same shape (e.g. a quantized or low-rank one). */
    public void setLinear(String name, Linear replacement) {
        linear(name);
        checkShape(name, replacement);
        linears.put(name, replacement);
    }

    /** The seven linears by name, in execution order (read-only view). */
    public Map<String, Linear> linears() { return Collections.unmodifiableMap(linears); }

    private void checkShape(String name, Linear l) {
        int in = name.equals(O) ? qDim : name.equals(DOWN) ? inter : d;
        int out = name.equals(Q) ? qDim : name.equals(K) || name.equals(V) ? kvDim : name.equals(O) || name.equals(DOWN) ? d : inter;
        if (l.in() != in || l.out() != out)
            throw new IllegalArgumentException("layer " + index + " " + name + ": shape [" + l.out() + ", " + l.in()
                    + "], expected [" + out + ", " + in + "]");
    }

    /**
     * Runs the layer on T rows of hidden state (row-major [T, hidden], updated in place) at
     * positions startPos .. startPos+T-1. Keys and values go into cache at those positions; the
     * earlier positions must be there already. With a null cache, startPos must be 0 and a
     * temporary one is used. The cache's length is not advanced (the caller does it once per pass).
     */
    public void forward(float[] hidden, int T, int startPos, KvCache.Layer cache, ForwardHooks hooks) {
        if (T < 1) throw new IllegalArgumentException("T must be positive, got " + T);
        if (cache == null) {
            if (startPos != 0) throw new IllegalArgumentException("startPos " + startPos + " needs a KV cache");
            cache = ws.temp(T);
        }
        if (startPos + T > cache.capacity())
            throw new IllegalStateException("positions " + startPos + ".." + (startPos + T - 1) + " exceed the KV cache capacity " + cache.capacity());
        if (hooks == null) hooks = ForwardHooks.NONE;
        prepare(T, startPos + T);

        attend(hidden, T, startPos, cache, hooks);
        addProjection(O, ws.att, hidden, T);
        mlpInner(hidden, T, hooks);
        addProjection(DOWN, ws.gate, hidden, T);
        hooks.layerOutput(index, hidden, T, d);
    }

    // The forward pass in its four stages, for callers that keep what a stage computed and re-run only
    // the later ones (sequential compression quantizes a linear between two stages). Each runs at
    // positions 0..T-1 without a KV cache; run one after the other they give the bits of forward().

    /**
     * The attention output of T rows of hidden state (o_proj's input, [T, q_dim] row-major) into att;
     * hidden is not changed. Hooks see the q/k/v and o_proj inputs.
     */
    public void attentionOutput(float[] hidden, int T, float[] att, ForwardHooks hooks) {
        prepare(T, T, hidden, d, att, qDim);
        attend(hidden, T, 0, ws.temp(T), hooks == null ? ForwardHooks.NONE : hooks);
        System.arraycopy(ws.att, 0, att, 0, T * qDim);
    }

    /** hidden += o_proj(att) over T rows. */
    public void addAttentionProjection(float[] hidden, float[] att, int T) {
        prepare(T, 0, hidden, d, att, qDim);
        addProjection(O, att, hidden, T);
    }

    /**
     * silu(gate_proj(n)) * up_proj(n) with n = RMSNorm(hidden) (down_proj's input, [T, intermediate])
     * into mlp; hidden is not changed. Hooks see the gate/up and down_proj inputs.
     */
    public void mlpActivation(float[] hidden, int T, float[] mlp, ForwardHooks hooks) {
        prepare(T, 0, hidden, d, mlp, inter);
        mlpInner(hidden, T, hooks == null ? ForwardHooks.NONE : hooks);
        System.arraycopy(ws.gate, 0, mlp, 0, T * inter);
    }

    /** hidden += down_proj(mlp) over T rows. */
    public void addMlpProjection(float[] hidden, float[] mlp, int T) {
        prepare(T, 0, hidden, d, mlp, inter);
        addProjection(DOWN, mlp, hidden, T);
    }

    /** Sizes the shared buffers for T rows and the rotary table for positions below positions. */
    private void prepare(int T, int positions) {
        if (T < 1) throw new IllegalArgumentException("T must be positive, got " + T);
        ws.ensureRows(T);
        rope.ensure(positions);
    }

    /** {@link #prepare(int, int)} for a stage that reads hidden [T, d] and a [T, width] array. */
    private void prepare(int T, int positions, float[] hidden, int hiddenWidth, float[] other, int width) {
        prepare(T, positions);
        if (hidden.length < (long) T * hiddenWidth || other.length < (long) T * width)
            throw new IllegalArgumentException("layer " + index + ": " + T + " rows need arrays of " + (long) T * hiddenWidth
                    + " and " + (long) T * width + " values, got " + hidden.length + " and " + other.length);
    }

    /** RMSNorm, q/k/v, rotary embedding, the cache's keys and values, attention: ws.att. */
    private void attend(float[] hidden, int T, int startPos, KvCache.Layer cache, ForwardHooks hooks) {
        VectorOps.rmsNormRows(hidden, 0, inputNorm, ws.xn, 0, T, d, eps);
        hooks.linearInput(index, QKV, ws.xn, T, d);
        linears.get(Q).forward(ws.xn, 0, ws.q, 0, T);
        linears.get(K).forward(ws.xn, 0, ws.k, 0, T);
        linears.get(V).forward(ws.xn, 0, ws.v, 0, T);
        for (int t = 0; t < T; t++) {
            int pos = startPos + t;
            rope.apply(ws.q, t * qDim, heads, pos);
            rope.apply(ws.k, t * kvDim, kvHeads, pos);
            for (int g = 0; g < kvHeads; g++)
                for (int i = 0; i < hd; i++) {
                    cache.k[cache.offset(g, i, pos)] = ws.k[t * kvDim + g * hd + i];
                    cache.v[cache.offset(g, i, pos)] = ws.v[t * kvDim + g * hd + i];
                }
        }
        attention(T, startPos, cache, hooks);
        hooks.linearInput(index, O_IN, ws.att, T, qDim);
    }

    /** RMSNorm, gate and up, silu(gate) * up: ws.gate. */
    private void mlpInner(float[] hidden, int T, ForwardHooks hooks) {
        VectorOps.rmsNormRows(hidden, 0, postNorm, ws.xn, 0, T, d, eps);
        hooks.linearInput(index, GATE_UP, ws.xn, T, d);
        linears.get(GATE).forward(ws.xn, 0, ws.gate, 0, T);
        linears.get(UP).forward(ws.xn, 0, ws.up, 0, T);
        Activations.siluMul(ws.gate, 0, ws.up, 0, T * inter);
        hooks.linearInput(index, DOWN_IN, ws.gate, T, inter);
    }

    /** hidden += linear name (o_proj or down_proj) of x, through ws.tmp. */
    private void addProjection(String name, float[] x, float[] hidden, int T) {
        linears.get(name).forward(x, 0, ws.tmp, 0, T);
        VectorOps.add(ws.tmp, 0, hidden, 0, T * d);
    }

    /** Below this many multiply-adds, attention runs on the calling thread. */
    private static final long PARALLEL_MIN_WORK = 1L << 15;
    /** Query rows per attention block: one pass over a key row serves them all. */
    private static final int ROW_BLOCK = 16;

    /** Causal attention of ws.q's T rows over cache positions [0, startPos + T) into ws.att. */
    private void attention(int T, int startPos, KvCache.Layer cache, ForwardHooks hooks) {
        int keys = startPos + T;
        int blocks = (T + ROW_BLOCK - 1) / ROW_BLOCK;
        int items = blocks * heads;
        long work = (long) heads * hd * ((long) T * startPos + (long) T * (T + 1) / 2);
        int tasks = work < PARALLEL_MIN_WORK ? 1 : Math.min(items, Parallel.threads());
        boolean wantProbs = hooks.wantsAttention(index);
        float[][] perHead = wantProbs ? new float[heads][Math.multiplyExact(T, keys)] : null;
        float[][] scratch = wantProbs ? null : ws.probs(tasks, Math.multiplyExact(Math.min(T, ROW_BLOCK), keys));
        if (tasks == 1) {
            attendItems(0, 1, items, T, startPos, keys, cache, perHead, scratch);
        } else {
            attentionTask.set(tasks, items, T, startPos, keys, cache, perHead, scratch);
            Parallel.forRange(tasks, attentionTask);
            attentionTask.set(0, 0, 0, 0, 0, null, null, null);
        }
        if (wantProbs) for (int h = 0; h < heads; h++) hooks.attentionProbs(index, h, perHead[h], T, keys, startPos);
    }

    /** The attention of one pass as a task of the threads: reused, so that a decode step allocates nothing. */
    private final AttentionTask attentionTask = new AttentionTask();

    private final class AttentionTask implements IntConsumer {
        private int tasks, items, T, startPos, keys;
        private KvCache.Layer cache;
        private float[][] perHead, scratch;

        void set(int tasks, int items, int T, int startPos, int keys, KvCache.Layer cache, float[][] perHead, float[][] scratch) {
            this.tasks = tasks;
            this.items = items;
            this.T = T;
            this.startPos = startPos;
            this.keys = keys;
            this.cache = cache;
            this.perHead = perHead;
            this.scratch = scratch;
        }

        @Override
        public void accept(int task) {
            attendItems(task, tasks, items, T, startPos, keys, cache, perHead, scratch);
        }
    }

    /**
     * The (row block, head) items of one task, dealt round-robin (item = block * heads + head) so
     * that long and short causal blocks mix. Probabilities go to perHead[h] when a hook wants them,
     * else to this task's scratch.
     */
    private void attendItems(int task, int tasks, int items, int T, int startPos, int keys, KvCache.Layer cache,
                             float[][] perHead, float[][] scratch) {
        int group = heads / kvHeads;
        for (int item = task; item < items; item += tasks) {
            int b = item / heads, h = item % heads, g = h / group;
            int t0 = b * ROW_BLOCK, rows = Math.min(ROW_BLOCK, T - t0);
            float[] probs = perHead != null ? perHead[h] : scratch[task];
            int pOff = perHead != null ? t0 * keys : 0;
            AttentionKernel.attendRows(ws.q, t0 * qDim + h * hd, qDim, rows, cache.k, cache.offset(g, 0, 0),
                    cache.v, cache.offset(g, 0, 0), cache.capacity(), startPos + t0 + 1, hd, scale,
                    probs, pOff, keys, ws.att, t0 * qDim + h * hd, qDim);
        }
    }
}
