package casp.model;

import casp.kernel.HessianAccumulator;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Forward hooks that accumulate sum x x^T (float64, {@link HessianAccumulator}) of the inputs of
 * chosen input groups (e.g. {@link DecoderLayer#QKV}) of chosen layers: the statistics GPTQ's
 * Hessians, CASP's whitening, the allocation probe and the attention-sparsity analysis are built
 * from. It can cut a forward pass short once the last wanted input was seen.
 */
public final class InputCapture implements ForwardHooks {
    private final Map<Integer, Map<List<String>, HessianAccumulator>> byLayer = new HashMap<>();
    private int stopLayer = -1;
    private List<String> stopGroup;

    /** Thrown by {@link #linearInput} to end a pass after the stop input (see {@link #stopAfter}). */
    public static final class Stop extends RuntimeException {
        private Stop() { super(null, null, false, false); }
    }

    private static final Stop STOP = new Stop();

    /** Captures the input of group in layer; returns its accumulator. */
    public HessianAccumulator capture(int layer, List<String> group, int dim) {
        return byLayer.computeIfAbsent(layer, k -> new HashMap<>()).computeIfAbsent(group, k -> new HessianAccumulator(dim));
    }

    /** The inputs of every group of every layer of a decoder. */
    public static InputCapture allLayers(LlamaModel model, List<String> group) {
        InputCapture c = new InputCapture();
        for (int l = 0; l < model.numLayers(); l++) c.capture(l, group, model.layer(l).linear(group.get(0)).in());
        return c;
    }

    /** The accumulator of group in layer (null when it is not captured). */
    public HessianAccumulator get(int layer, List<String> group) {
        Map<List<String>, HessianAccumulator> m = byLayer.get(layer);
        return m == null ? null : m.get(group);
    }

    /** Ends each pass (with {@link Stop}) once the input of group in layer was captured. */
    public InputCapture stopAfter(int layer, List<String> group) {
        stopLayer = layer;
        stopGroup = group;
        return this;
    }

    @Override
    public void linearInput(int layer, List<String> names, float[] x, int rows, int cols) {
        Map<List<String>, HessianAccumulator> m = byLayer.get(layer);
        HessianAccumulator a = m == null ? null : m.get(names);
        if (a != null) a.add(x, 0, rows);
        if (layer == stopLayer && names.equals(stopGroup)) throw STOP;
    }

    /**
     * Runs one decoder layer on a copy of every input (hidden [tokens, d] each, left unchanged),
     * capturing; a pass ends early at the stop input.
     */
    public void run(DecoderLayer layer, List<float[]> hidden, int[] tokens) {
        int maxLen = 0;
        for (float[] h : hidden) maxLen = Math.max(maxLen, h.length);
        float[] scratch = new float[maxLen];
        for (int i = 0; i < hidden.size(); i++) {
            float[] h = hidden.get(i);
            System.arraycopy(h, 0, scratch, 0, h.length);
            try {
                layer.forward(scratch, tokens[i], 0, null, this);
            } catch (Stop expected) {
                // the rest of the layer is not needed for these statistics
            }
        }
    }
}
