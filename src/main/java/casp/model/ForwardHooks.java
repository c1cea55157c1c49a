package casp.model;

import java.util.List;

/**
 * Callbacks into the forward pass, all no-ops by default. Calibration captures linear inputs
 * (for Hessians); the sparsity analysis reads attention probabilities. Hooks are always called
 * on the thread that called the forward pass, never concurrently.
 */
public interface ForwardHooks {
    /** Hooks that do nothing: the fast path. */
    ForwardHooks NONE = new ForwardHooks() {};

    /**
     * The input of the linear layers {@code names} of decoder layer {@code layer}, called once per
     * shared input: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"] (after the input
     * norm), ["self_attn.o_proj"] (the attention output), ["mlp.gate_proj", "mlp.up_proj"] (after the
     * post-attention norm), ["mlp.down_proj"] (silu(gate) * up). x holds rows x cols values
     * row-major from index 0 (the array may be longer). The hook may modify them in place: the
     * linears then read the modified values.
     */
    default void linearInput(int layer, List<String> names, float[] x, int rows, int cols) {}

    /** Whether {@link #attentionProbs} should be called for this layer (they cost memory and time). */
    default boolean wantsAttention(int layer) { return false; }

    /**
     * Attention probabilities of one head: probs[t * keys + j] is the weight query row t (absolute
     * position startPos + t) gives key position j, for t in [0, rows) and j in [0, keys), with
     * keys = startPos + rows; entries with j > startPos + t are 0 (causal). The array is owned by
     * the caller and only valid during the call.
     */
    default void attentionProbs(int layer, int head, float[] probs, int rows, int keys, int startPos) {}

    /** The hidden state after decoder layer {@code layer}: rows x cols row-major from index 0 (may be modified). */
    default void layerOutput(int layer, float[] hidden, int rows, int cols) {}
}
