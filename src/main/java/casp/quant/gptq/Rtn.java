package casp.quant.gptq;

import casp.kernel.QuantOps;
import casp.quant.Quantizer;

import java.util.Map;

/**
 * Round-to-nearest: every weight goes to the nearest point of its group's min/max grid
 * ({@link QuantGrid}), with no error feedback. The baseline GPTQ must beat; it needs no data.
 */
public final class Rtn implements Quantizer {
    private final QuantGrid grid;
    private final int groupSize;

    /**
     * @param groupSize columns per group (> 0), or -1 for one group per output channel
     */
    public Rtn(int bits, int groupSize, boolean symmetric, boolean mseClip) {
        if (groupSize == 0 || groupSize < -1) {
            throw new IllegalArgumentException("group size must be positive or -1 (per channel), got " + groupSize);
        }
        this.grid = new QuantGrid(bits, symmetric, mseClip);
        this.groupSize = groupSize;
    }

    @Override
    public String method() {
        return "rtn";
    }

    @Override
    public int bits() {
        return grid.bits;
    }

    @Override
    public long storageBits(int rows, int cols) {
        return GptqFormat.storageBits(rows, cols, grid.bits, groupSize);
    }

    /** Quantizes W [rows, cols] (row-major, untouched); h is not used and may be null. */
    @Override
    public QuantizedWeight quantize(float[] w, int rows, int cols, double[] h) {
        if (rows < 1 || cols < 1 || w.length != (long) rows * cols) {
            throw new IllegalArgumentException("W has " + w.length + " values, expected " + rows + " x " + cols);
        }
        int groups = QuantizedWeight.groupCount(cols, groupSize);
        float[] wt = QuantOps.transpose(w, rows, cols); // a column of W contiguous
        float[] scale = new float[groups * rows], zero = new float[groups * rows];
        byte[] codesT = new byte[rows * cols];
        int[] gIdx = new int[cols];
        for (int g = 0; g < groups; g++) {
            int c0 = groupSize < 0 ? 0 : g * groupSize, cn = groupSize < 0 ? cols : Math.min(groupSize, cols - c0);
            grid.findParams(wt, c0 * rows, rows, rows, cn, scale, zero, g * rows);
            for (int c = c0; c < c0 + cn; c++) {
                QuantOps.quantize(wt, c * rows, rows, scale, zero, g * rows, grid.maxq, codesT, c * rows, null, 0);
                gIdx[c] = g;
            }
        }
        int[] identity = new int[cols];
        for (int c = 0; c < cols; c++) identity[c] = c;
        byte[] codes = new byte[rows * cols];
        QuantOps.scatterCodes(codesT, identity, rows, cols, codes);
        int[] zeros = new int[zero.length];
        for (int i = 0; i < zero.length; i++) zeros[i] = (int) zero[i];
        return new QuantizedWeight(method(), rows, cols, grid.bits, groupSize, grid.symmetric, codes, scale, zeros, gIdx, Map.of());
    }
}
