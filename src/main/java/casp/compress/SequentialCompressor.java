package casp.compress;

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
import casp.quant.lowrank.LowRankLayer;
import casp.quant.lowrank.LowRankLinear;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * GPTQ-style sequential compression of a decoder, block by block (ALGORITHMS.md section 2).
 *
 * <p>The calibration samples hold the inputs of the current block (an {@link ActivationStore}). For
 * each block: capture the inputs of its linear layers over all samples into float64 Hessians
 * (q/k/v share one, gate/up share one), quantize each linear with the quantizer the
 * {@link QuantizerPlan} gives it, put the dequantized weight in its place, then re-run the
 * compressed block on every sample: its outputs are the next block's inputs.
 *
 * <p>"True sequential" (the default): the groups [q,k,v] -> o -> [gate,up] -> down are handled
 * one after the other, each group's Hessian collected with the earlier groups already quantized.
 * The block runs in its stages and keeps what each computed for the next (see
 * {@link #compressBlockInStages}); where those results do not fit, it is re-run up to each group's
 * input instead (the capture hook cuts the forward pass short once the input is seen). Otherwise
 * all four Hessians come from one pass of the uncompressed block.
 *
 * <p>During compression a quantized linear is a {@link DenseLinear} of its dequantized weight
 * (fast GEMMs); its stored form is kept in each {@link LinearResult} for writing. The
 * model is modified in place. Not thread-safe.
 */
public final class SequentialCompressor {

    /** The quantizer of each linear layer: the hook for per-linear bit widths (CASP bit allocation). */
    @FunctionalInterface
    public interface QuantizerPlan {
        Quantizer quantizer(int layer, String name);
    }

    /**
     * What happened to one linear layer.
     *
     * @param bits          nominal width ({@link CompressedLayer#bits()}; a low-rank projection: factor B's)
     * @param groupSize     columns per group of a scalar grid, -1 otherwise
     * @param effectiveBits stored bits per weight including scales and zeros
     * @param proxyError    tr(dW H dW^T) / tr(W H W^T)
     * @param seconds       quantization time (Hessian capture excluded)
     * @param stored        the compressed layer as it is written (null only in a report read back
     *                      without its tensors)
     */
    public record LinearResult(int layer, String name, int rows, int cols, String method, int bits, int groupSize,
                               double effectiveBits, double proxyError, double seconds, Map<String, Number> stats,
                               CompressedLayer stored) {
        public long weights() { return (long) rows * cols; }

        /** The same result with its stored layer. */
        public LinearResult withStored(CompressedLayer layer) {
            return new LinearResult(this.layer, name, rows, cols, method, bits, groupSize, effectiveBits, proxyError, seconds, stats, layer);
        }

        /** casp: the factors when the projection became low-rank, else null. */
        public LowRankLayer lowRank() {
            return stored instanceof LowRankLayer l ? l : null;
        }
    }

    /**
     * One block: its linears in the order they were compressed, the total wall time, the part of it
     * spent running the block (captures and the final re-run, Hessians included) and the part of
     * that spent accumulating Hessians.
     */
    public record BlockResult(int layer, List<LinearResult> linears, double seconds, double forwardSeconds, double hessianSeconds) {
        /** A block whose Hessian time was not recorded (0). */
        public BlockResult(int layer, List<LinearResult> linears, double seconds, double forwardSeconds) {
            this(layer, linears, seconds, forwardSeconds, 0);
        }
    }

    /** Progress callbacks, on the compressing thread. */
    public interface Listener {
        default void blockStarted(int layer, int layers) {}

        default void linearDone(LinearResult result) {}

        /**
         * Block {@code block.layer()} is done and the samples now hold its outputs (the inputs of
         * the next block): the moment to checkpoint.
         */
        default void blockDone(BlockResult block, Calibration activations) {}
    }

    /** The input groups in execution order: linears of one group read the same input. */
    public static final List<List<String>> GROUPS = List.of(DecoderLayer.QKV, DecoderLayer.O_IN, DecoderLayer.GATE_UP,
            DecoderLayer.DOWN_IN);

    private final LlamaModel model;
    private final QuantizerPlan plan;
    private final boolean trueSequential;
    private boolean keepStages = true;
    /** Blocks compressed by {@link #compressBlockInStages} (for tests). */
    int blocksInStages;

    public SequentialCompressor(LlamaModel model, QuantizerPlan plan, boolean trueSequential) {
        this.model = model;
        this.plan = plan;
        this.trueSequential = trueSequential;
    }

    /** Re-runs the block from its input for every group even where the stage results would fit (the reference for tests). */
    SequentialCompressor recomputingStages() {
        keepStages = false;
        return this;
    }

    /** Compresses every block; see {@link #run(Calibration, int, Listener)}. */
    public List<BlockResult> run(Calibration calib, Listener listener) {
        return run(calib, 0, listener);
    }

    /**
     * Compresses blocks firstBlock .. numLayers-1. The samples must hold the inputs of block
     * firstBlock (the embeddings when it is 0, a checkpoint's activations when resuming) and are
     * overwritten, block after block, ending with the last block's outputs.
     */
    public List<BlockResult> run(Calibration calib, int firstBlock, Listener listener) {
        return run(calib, firstBlock, model.numLayers(), listener);
    }

    /** Compresses blocks firstBlock .. endBlock-1 (a run split into parts: the samples then hold block endBlock's inputs). */
    public List<BlockResult> run(Calibration calib, int firstBlock, int endBlock, Listener listener) {
        if (calib.hidden() != model.hiddenSize())
            throw new IllegalArgumentException("calibration rows have " + calib.hidden() + " values, the model's hidden size is " + model.hiddenSize());
        if (firstBlock < 0 || firstBlock > model.numLayers())
            throw new IllegalArgumentException("first block " + firstBlock + " outside 0.." + model.numLayers());
        if (endBlock < firstBlock || endBlock > model.numLayers())
            throw new IllegalArgumentException("end block " + endBlock + " outside " + firstBlock + ".." + model.numLayers());
        Listener l = listener == null ? new Listener() {} : listener;
        List<BlockResult> out = new ArrayList<>();
        for (int i = firstBlock; i < endBlock; i++) {
            l.blockStarted(i, model.numLayers());
            BlockResult b = compressBlock(model.layer(i), calib, l);
            out.add(b);
            l.blockDone(b, calib);
        }
        return out;
    }

    private BlockResult compressBlock(DecoderLayer layer, Calibration calib, Listener l) {
        if (trueSequential && keepStages && stagesFit(layer, calib)) return compressBlockInStages(layer, calib, l);
        long t0 = System.nanoTime();
        long forwardNanos = 0;
        long[] hessianNanos = {0};
        List<LinearResult> results = new ArrayList<>();
        if (trueSequential) {
            for (List<String> group : GROUPS) {
                long f0 = System.nanoTime();
                InputCapture h = capture(layer, calib, List.of(group), group, hessianNanos);
                forwardNanos += System.nanoTime() - f0;
                compressGroup(layer, group, h.get(layer.index(), group).finish(), results, l);
            }
        } else {
            long f0 = System.nanoTime();
            InputCapture h = capture(layer, calib, GROUPS, GROUPS.get(GROUPS.size() - 1), hessianNanos);
            forwardNanos += System.nanoTime() - f0;
            for (List<String> group : GROUPS) compressGroup(layer, group, h.get(layer.index(), group).finish(), results, l);
        }
        // The compressed block's outputs become the next block's inputs.
        long f0 = System.nanoTime();
        ActivationStore store = calib.store();
        float[] scratch = new float[store.maxLength()];
        for (int i = 0; i < store.size(); i++) {
            float[] x = store.load(i, scratch);
            layer.forward(x, store.tokens(i), 0, null, ForwardHooks.NONE);
            store.write(i, x);
        }
        forwardNanos += System.nanoTime() - f0;
        return new BlockResult(layer.index(), Collections.unmodifiableList(results), (System.nanoTime() - t0) / 1e9,
                forwardNanos / 1e9, hessianNanos[0] / 1e9);
    }

    /**
     * Whether the stage results of a block fit beside the samples: the attention outputs with the
     * residual stream after attention, then that stream with the MLP activations (float32), in the
     * store's memory budget and its scratch disk (the heap left, without a scratch file) with 1 GiB
     * to spare.
     */
    private static boolean stagesFit(DecoderLayer layer, Calibration calib) {
        ActivationStore x = calib.store();
        long tokens = calib.tokens();
        long width = Math.max(layer.linear(DecoderLayer.O).in(), layer.linear(DecoderLayer.DOWN).in()) + x.hidden();
        long room = x.roomBeside();
        return room == Long.MAX_VALUE || tokens * width * Float.BYTES + (1L << 30) <= room;
    }

    /**
     * True-sequential compression of a block that keeps what each stage computed instead of re-running
     * the block from its input for every group: the attention outputs (o_proj's Hessian, then the
     * residual stream after attention), that stream (the MLP's input and the block's output), and the
     * MLP activations (down_proj's Hessian and input). The same arithmetic as {@link #compressBlock}'s
     * re-runs, so the same bits, in 40-50% of their multiply-adds (42% at Llama-2-7B's shapes).
     */
    private BlockResult compressBlockInStages(DecoderLayer layer, Calibration calib, Listener l) {
        long t0 = System.nanoTime();
        long[] hessianNanos = {0};
        List<LinearResult> results = new ArrayList<>();
        ActivationStore x = calib.store();
        int li = layer.index(), d = x.hidden(), n = x.size();
        int qDim = layer.linear(DecoderLayer.O).in(), inter = layer.linear(DecoderLayer.DOWN).in();
        int maxTokens = x.maxLength() / d;

        // q, k, v: the pass ends at their input (the input norm).
        long f0 = System.nanoTime();
        InputCapture qkv = capture(layer, calib, List.of(DecoderLayer.QKV), DecoderLayer.QKV, hessianNanos);
        long forwardNanos = System.nanoTime() - f0;
        compressGroup(layer, DecoderLayer.QKV, qkv.get(li, DecoderLayer.QKV).finish(), results, l);

        InputCapture gateUp = captureOf(layer, DecoderLayer.GATE_UP).stopAfter(li, DecoderLayer.GATE_UP);
        try (StageStores stores = new StageStores()) {
            // o_proj: its input is the attention output, kept.
            ActivationStore attention = stores.add(new ActivationStore(qDim, x.float32Beside("attention")));
            InputCapture o = captureOf(layer, DecoderLayer.O_IN);
            f0 = System.nanoTime();
            keepStage(x, layer::attentionOutput, timed(o, hessianNanos), attention);
            forwardNanos += System.nanoTime() - f0;
            compressGroup(layer, DecoderLayer.O_IN, o.get(li, DecoderLayer.O_IN).finish(), results, l);

            // gate, up: their input is the norm of the residual stream after attention, kept.
            ActivationStore residual = stores.add(new ActivationStore(d, x.float32Beside("residual", attention)));
            ForwardHooks hooks = timed(gateUp, hessianNanos);
            f0 = System.nanoTime();
            float[] att = new float[maxTokens * qDim], unused = new float[maxTokens * inter];
            for (int i = 0; i < n; i++) {
                int T = x.tokens(i);
                float[] h = new float[T * d];
                x.read(i, h);
                layer.addAttentionProjection(h, attention.load(i, att), T);
                residual.add(h, T);
                try {
                    layer.mlpActivation(h, T, unused, hooks);
                } catch (InputCapture.Stop expected) {
                    // the pass ends at the gate/up input
                }
            }
            forwardNanos += System.nanoTime() - f0;
            stores.close(attention);
            compressGroup(layer, DecoderLayer.GATE_UP, gateUp.get(li, DecoderLayer.GATE_UP).finish(), results, l);

            // down_proj: its input is the MLP activation, kept.
            ActivationStore mlp = stores.add(new ActivationStore(inter, x.float32Beside("mlp", residual)));
            InputCapture down = captureOf(layer, DecoderLayer.DOWN_IN);
            f0 = System.nanoTime();
            keepStage(residual, layer::mlpActivation, timed(down, hessianNanos), mlp);
            forwardNanos += System.nanoTime() - f0;
            compressGroup(layer, DecoderLayer.DOWN_IN, down.get(li, DecoderLayer.DOWN_IN).finish(), results, l);

            // The compressed block's outputs become the next block's inputs (the residual stream's
            // samples are updated in place: the store is closed right after).
            f0 = System.nanoTime();
            float[] h = new float[x.maxLength()], m = new float[maxTokens * inter];
            for (int i = 0; i < n; i++) {
                float[] out = residual.load(i, h);
                layer.addMlpProjection(out, mlp.load(i, m), x.tokens(i));
                x.write(i, out);
            }
            forwardNanos += System.nanoTime() - f0;
        }
        blocksInStages++;
        return new BlockResult(li, Collections.unmodifiableList(results), (System.nanoTime() - t0) / 1e9,
                forwardNanos / 1e9, hessianNanos[0] / 1e9);
    }

    /** The stage stores of a block, closed together (their scratch files removed) however the block ends. */
    private static final class StageStores implements AutoCloseable {
        private final List<ActivationStore> open = new ArrayList<>();

        ActivationStore add(ActivationStore s) {
            open.add(s);
            return s;
        }

        void close(ActivationStore s) {
            open.remove(s);
            s.close();
        }

        @Override
        public void close() {
            RuntimeException first = null;
            for (int i = open.size() - 1; i >= 0; i--) {
                try {
                    open.get(i).close();
                } catch (RuntimeException e) {
                    if (first == null) first = e;
                    else first.addSuppressed(e);
                }
            }
            open.clear();
            if (first != null) throw first;
        }
    }

    /** A stage of a decoder layer: [T, hidden] rows in, [T, width] rows out (see DecoderLayer). */
    @FunctionalInterface
    private interface Stage {
        void run(float[] hidden, int T, float[] out, ForwardHooks hooks);
    }

    /** Runs stage on every sample of from and adds its outputs to to (of the stage's width). */
    private static void keepStage(ActivationStore from, Stage stage, ForwardHooks hooks, ActivationStore to) {
        float[] in = new float[from.maxLength()];
        for (int i = 0; i < from.size(); i++) {
            int T = from.tokens(i);
            float[] out = new float[T * to.hidden()]; // kept by the store when it stays in memory
            stage.run(from.load(i, in), T, out, hooks);
            to.add(out, T);
        }
    }

    /** A capture of one input group of the layer. */
    private static InputCapture captureOf(DecoderLayer layer, List<String> group) {
        InputCapture c = new InputCapture();
        c.capture(layer.index(), group, layer.linear(group.get(0)).in());
        return c;
    }

    /** Hooks that pass the linear inputs to c, adding the time it takes to hessianNanos[0]. */
    private static ForwardHooks timed(InputCapture c, long[] hessianNanos) {
        return new ForwardHooks() {
            @Override
            public void linearInput(int li, List<String> names, float[] x, int rows, int cols) {
                long h0 = System.nanoTime();
                try {
                    c.linearInput(li, names, x, rows, cols);
                } finally {
                    hessianNanos[0] += System.nanoTime() - h0;
                }
            }
        };
    }

    /**
     * Runs the block on a copy of every sample and accumulates the Hessians of the given input
     * groups; the pass stops after the input of {@code last}. The accumulation time is added to hessianNanos[0].
     */
    private static InputCapture capture(DecoderLayer layer, Calibration calib, List<List<String>> groups, List<String> last,
                                        long[] hessianNanos) {
        InputCapture c = new InputCapture().stopAfter(layer.index(), last);
        for (List<String> g : groups) c.capture(layer.index(), g, layer.linear(g.get(0)).in());
        ForwardHooks timed = timed(c, hessianNanos);
        ActivationStore store = calib.store();
        float[] scratch = new float[store.maxLength()];
        for (int i = 0; i < store.size(); i++) {
            store.read(i, scratch);
            try {
                layer.forward(scratch, store.tokens(i), 0, null, timed);
            } catch (InputCapture.Stop expected) {
                // the rest of the block is not needed for these statistics
            }
        }
        return c;
    }

    private void compressGroup(DecoderLayer layer, List<String> group, double[] h, List<LinearResult> results, Listener l) {
        for (String name : group) {
            DenseLinear dense = HalfLinear.dense(layer.linear(name)); // 16-bit weights are widened here, one linear at a time
            if (dense == null)
                throw new IllegalStateException("layer " + layer.index() + " " + name + " is not a float linear (already compressed?)");
            int rows = dense.out(), cols = dense.in();
            Quantizer q = plan.quantizer(layer.index(), name);
            if (q == null) continue; // casp --lowrank-only: this linear stays float
            long t0 = System.nanoTime();
            CompressedLayer ql = q.quantize(dense.weight(), rows, cols, h);
            float[] wq = ql.dequantize();
            double proxy = ProxyError.relative(dense.weight(), wq, rows, cols, h);
            double secs = (System.nanoTime() - t0) / 1e9;
            // The rest of the block runs on the weight the stored form stands for: low-rank factors as
            // two GEMMs, any other format as its dequantized float weight (fast GEMMs).
            if (ql instanceof LowRankLayer lr) {
                LowRankLinear factors = LowRankLinear.dense(rows, lr.rank(), cols, lr.a(), lr.b());
                layer.setLinear(name, new LowRankLinear(factors.a(), factors.b(), dense.bias()));
            } else {
                layer.setLinear(name, new DenseLinear(cols, rows, wq, dense.bias()));
            }
            LinearResult r = new LinearResult(layer.index(), name, rows, cols, ql.method(), ql.bits(), ql.groupSize(),
                    ql.effectiveBits(), proxy, secs, ql.stats(), ql);
            results.add(r);
            l.linearDone(r);
        }
    }
}
