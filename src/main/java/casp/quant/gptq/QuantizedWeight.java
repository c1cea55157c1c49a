package casp.quant.gptq;

import casp.io.SafeTensorsWriter;
import casp.kernel.GptqPacking;
import casp.kernel.QuantOps;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A weight quantized on a scalar min/max grid (RTN, GPTQ), in the terms of the GPTQ v1 format:
 * W[r, c] = scales[g, r] * (codes[r, c] - zeros[g, r]) with g = gIdx[c].
 *
 * <p>Arrays are exposed as they are (no defensive copies: they can be large); treat them as
 * read-only. Scales are fp16-representable floats (see {@link QuantGrid#roundScale}).
 */
public final class QuantizedWeight implements CompressedLayer {
    public final String method;
    public final int rows, cols;
    /** Bits per code: 2, 3, 4 or 8. */
    public final int bits;
    /** Columns per group, or -1 for one group per row (per channel). */
    public final int groupSize;
    public final boolean symmetric;
    /** Codes in [0, 2^bits - 1], unsigned bytes (read with {@code & 0xff}), row-major [rows, cols], original column order. */
    public final byte[] codes;
    /** Per-group scales, [groups, rows] (the GPTQ format's layout). */
    public final float[] scales;
    /** Per-group integer zeros in [0, 2^bits - 1], [groups, rows]. */
    public final int[] zeros;
    /** Group of each input column, [cols]; with act-order and no static groups it is not monotone. */
    public final int[] gIdx;
    private final Map<String, Number> stats;

    public QuantizedWeight(String method, int rows, int cols, int bits, int groupSize, boolean symmetric,
                           byte[] codes, float[] scales, int[] zeros, int[] gIdx, Map<String, Number> stats) {
        int groups = groupCount(cols, groupSize);
        if (codes.length != (long) rows * cols || scales.length != (long) groups * rows
                || zeros.length != scales.length || gIdx.length != cols) {
            throw new IllegalArgumentException("inconsistent quantized weight arrays for " + rows + "x" + cols
                    + " with " + groups + " groups");
        }
        for (int g : gIdx) {
            if (g < 0 || g >= groups) throw new IllegalArgumentException("g_idx entry " + g + " outside 0.." + (groups - 1));
        }
        this.method = method;
        this.rows = rows;
        this.cols = cols;
        this.bits = bits;
        this.groupSize = groupSize;
        this.symmetric = symmetric;
        this.codes = codes;
        this.scales = scales;
        this.zeros = zeros;
        this.gIdx = gIdx;
        this.stats = Collections.unmodifiableMap(new LinkedHashMap<>(stats));
    }

    /** Number of groups along the input dimension: ceil(cols / groupSize), or 1 per channel. */
    public static int groupCount(int cols, int groupSize) {
        return groupSize <= 0 ? 1 : (cols + groupSize - 1) / groupSize;
    }

    public int groups() {
        return groupCount(cols, groupSize);
    }

    /** The code of W[r, c], in [0, 2^bits - 1]. */
    public int code(int r, int c) {
        return codes[r * cols + c] & 0xff;
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    @Override public String method() { return method; }
    @Override public Map<String, Number> stats() { return stats; }

    @Override
    public float[] dequantize() {
        float[] out = new float[rows * cols];
        QuantOps.dequantize(codes, scales, zeros, gIdx, rows, cols, out);
        return out;
    }

    /**
     * The GPTQ v1 tensors of this weight (qweight, qzeros, fp16 scales, g_idx; see
     * {@link GptqPacking}). Exact: the scales are fp16 values already and the zeros lie in [1, 2^bits].
     */
    public GptqPacking.Tensors toGptq() {
        return GptqFormat.pack(this);
    }

    @Override public StorageFormat format() { return GptqFormat.INSTANCE; }

    @Override public int bits() { return bits; }

    @Override public int groupSize() { return groupSize; }

    @Override
    public long storageBits() {
        return GptqFormat.storageBits(rows, cols, bits, groupSize);
    }

    @Override
    public void write(SafeTensorsWriter w, String prefix) {
        GptqFormat.write(w, prefix, toGptq());
    }

    @Override
    public Linear linear(float[] bias) {
        return QuantizedLinear.fromGptq(toGptq(), bias);
    }

    /**
     * Bits per weight as stored: the code plus, per group and row, an fp16 scale and a b-bit zero:
     * bits + groups * (16 + bits) / cols (2-bit g128: 2 + 18/128 = 2.14). The g_idx vector (32 / rows
     * bits per weight, and derivable when it is monotone) is not counted.
     */
    @Override
    public double effectiveBits() {
        return bits + (double) groups() * (16 + bits) / cols;
    }
}
