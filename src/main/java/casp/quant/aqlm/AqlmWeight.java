package casp.quant.aqlm;

import casp.io.SafeTensorsWriter;
import casp.kernel.AdditiveQuant;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;
import casp.quant.aqlm.AqlmTensors;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A weight in AQLM form (see {@link Aqlm}): codes [rows, groups, M], M codebooks of 2^B codewords of
 * 8 values, one scale per row; W[r, 8g + i] = scales[r] * sum_m codebooks[m][codes[r, g, m]][i].
 * Codebooks and scales hold fp16 values (what the format stores), so the dequantized weight is
 * exactly what a reader of the written tensors gets. Arrays are exposed as they are; treat them as
 * read-only.
 */
public final class AqlmWeight implements CompressedLayer {
    public final int rows, cols, numCodebooks, codebookBits;
    /** [rows, groups, numCodebooks], in [0, 2^codebookBits). */
    public final int[] codes;
    /** [numCodebooks, 2^codebookBits, 8]. */
    public final float[] codebooks;
    /** [rows]. */
    public final float[] scales;
    /**
     * -1 when this layer stores its codebooks; else the decoder layer whose same-named linear stores
     * them (codebooks shared across layers): this layer then stores codes, scales and that index.
     */
    public final int codebooksLayer;
    private final double[] history;
    private final Map<String, Number> stats;

    public AqlmWeight(int rows, int cols, int numCodebooks, int codebookBits, int[] codes, float[] codebooks, float[] scales,
                      double[] objectiveHistory, Map<String, Number> stats) {
        this(rows, cols, numCodebooks, codebookBits, codes, codebooks, scales, objectiveHistory, stats, -1);
    }

    /** As the other constructor; codebooksLayer >= 0: the codebooks are stored with that layer's same-named linear. */
    public AqlmWeight(int rows, int cols, int numCodebooks, int codebookBits, int[] codes, float[] codebooks, float[] scales,
                      double[] objectiveHistory, Map<String, Number> stats, int codebooksLayer) {
        // The tensors record checks the array sizes.
        new AqlmTensors(rows, groups(cols), numCodebooks, codebookBits, codes, codebooks, scales);
        this.rows = rows;
        this.cols = cols;
        this.numCodebooks = numCodebooks;
        this.codebookBits = codebookBits;
        this.codes = codes;
        this.codebooks = codebooks;
        this.scales = scales;
        this.codebooksLayer = Math.max(-1, codebooksLayer);
        this.history = objectiveHistory == null ? new double[0] : objectiveHistory.clone();
        this.stats = Collections.unmodifiableMap(new LinkedHashMap<>(stats));
    }

    /** Rebuilds a weight from its stored tensors (a checkpoint), with the stats of its report entry. */
    public static AqlmWeight of(AqlmTensors t, int cols, Map<String, Number> stats) {
        return of(t, cols, stats, -1);
    }

    /** As {@link #of(AqlmTensors, int, Map)} for a layer whose codebooks are stored with layer codebooksLayer (-1: its own). */
    public static AqlmWeight of(AqlmTensors t, int cols, Map<String, Number> stats, int codebooksLayer) {
        return new AqlmWeight(t.rows(), cols, t.numCodebooks(), t.codebookBits(), t.codes(), t.codebooks(), t.scales(), null, stats,
                codebooksLayer);
    }

    /** Whether the codebooks are stored with another layer's linear. */
    public boolean sharesCodebooks() { return codebooksLayer >= 0; }

    /** Groups of 8 inputs per row: ceil(cols / 8) (the last one padded when 8 does not divide cols). */
    public static int groups(int cols) {
        return (cols + Aqlm.GROUP - 1) / Aqlm.GROUP;
    }

    public int groups() { return groups(cols); }

    /** Codewords per codebook. */
    public int codebookSize() { return 1 << codebookBits; }

    /** Nominal bits per weight of the codes, M B / 8. */
    @Override public int bits() { return numCodebooks * codebookBits / Aqlm.GROUP; }

    /** The stored tensors (codes, codebooks, scales). */
    public AqlmTensors tensors() {
        return new AqlmTensors(rows, groups(), numCodebooks, codebookBits, codes, codebooks, scales);
    }

    /**
     * The objective tr(dW H dW^T) after each step of the quantizer, before the fp16 rounding of the
     * stored values: after k-means, after the first codebook/scale solve, then after each code search
     * and each codebook/scale solve. Empty for a weight read back from a file.
     */
    public double[] objectiveHistory() { return history.clone(); }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public String method() { return "aqlm"; }
    @Override public Map<String, Number> stats() { return stats; }

    @Override
    public float[] dequantize() {
        float[] out = new float[rows * cols];
        AdditiveQuant.decode(codes, rows, groups(), numCodebooks, codebooks, codebookSize(), scales, cols, out);
        return out;
    }

    /**
     * Stored bits per original weight: the codes (B bits each, rows * ceil(cols / 8) * M of them),
     * the codebooks (M 2^B 8 fp16 values) and the scales (one fp16 per row), over rows * cols.
     * 2x8 on a 4096 x 4096 layer: 2 + 0.004 + 0.004; on stories260K's 64 x 64 q_proj the
     * codebooks alone are 16 bits per weight.
     */
    @Override
    public double effectiveBits() {
        return (double) storageBits() / ((long) rows * cols);
    }

    @Override public StorageFormat format() { return AqlmFormat.INSTANCE; }

    /** Inputs per code group: 8. */
    @Override public int groupSize() { return Aqlm.GROUP; }

    @Override
    public long storageBits() {
        return sharesCodebooks() ? sharedStorageBits(rows, cols, numCodebooks, codebookBits)
                : storageBits(rows, cols, numCodebooks, codebookBits);
    }

    /** The tensors; with shared codebooks the codebooks tensor is replaced by the index of the layer that holds them. */
    @Override
    public void write(SafeTensorsWriter w, String prefix) {
        if (sharesCodebooks()) tensors().writeSharing(w, prefix, codebooksLayer);
        else tensors().write(w, prefix);
    }

    @Override
    public Linear linear(float[] bias) {
        return AqlmLinear.of(tensors(), cols, bias);
    }

    /** Bits of the codebooks alone: M 2^B 8 fp16 values. */
    public static long codebooksStorageBits(int numCodebooks, int codebookBits) {
        return 16L * numCodebooks * (1L << codebookBits) * Aqlm.GROUP;
    }

    /**
     * Exact stored bits of an AQLM layer whose codebooks another layer stores: the codes, the
     * scales and the 32-bit index of the layer holding the codebooks.
     */
    public static long sharedStorageBits(int rows, int cols, int numCodebooks, int codebookBits) {
        return storageBits(rows, cols, numCodebooks, codebookBits) - codebooksStorageBits(numCodebooks, codebookBits) + 32;
    }

    /** Exact stored bits of an AQLM layer of this shape and configuration. */
    public static long storageBits(int rows, int cols, int numCodebooks, int codebookBits) {
        return (long) rows * groups(cols) * numCodebooks * codebookBits + codebooksStorageBits(numCodebooks, codebookBits) + 16L * rows;
    }
}
