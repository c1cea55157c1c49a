package casp.quant.quip;

import casp.io.SafeTensorsWriter;
import casp.kernel.E8pMatrix;
import casp.kernel.E8pResidual;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;
import casp.quant.quip.QuipLinear;
import casp.tensor.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What {@link Quip} returns for one linear: the E8P12 codes, sign vectors and scale
 * ({@link E8pMatrix}), written as the tensors {@link QuipLinear} reads.
 */
public final class QuipLayer implements CompressedLayer {
    private final E8pMatrix matrix;
    private final Map<String, Number> stats;

    public QuipLayer(E8pMatrix matrix, Map<String, Number> stats) {
        this.matrix = matrix;
        this.stats = Collections.unmodifiableMap(new LinkedHashMap<>(stats));
    }

    /** The stored form. */
    public E8pMatrix matrix() { return matrix; }

    @Override public int rows() { return matrix.rows; }
    @Override public int cols() { return matrix.cols; }
    @Override public String method() { return QuipLinear.METHOD; }
    @Override public Map<String, Number> stats() { return stats; }

    @Override public StorageFormat format() { return QuipFormat.INSTANCE; }

    @Override
    public Linear linear(float[] bias) {
        return new QuipLinear(matrix, bias);
    }

    /** 2 (E8P12: 16 bits per 8 weights), 3 or 4 (plus a residual stage of 8 or 16 bits per 8 weights). */
    @Override public int bits() { return matrix.residual.bits; }

    @Override
    public float[] dequantize() {
        return matrix.dequantize();
    }

    /**
     * Exact stored bits: 16 per code (per 8 padded weights), the residual codes, one per sign, 32 per
     * scale; equals {@link Quip#storageBits} of the shape and width.
     */
    @Override
    public long storageBits() {
        E8pMatrix m = matrix;
        long b = 16L * m.codes.length + m.paddedRows + m.paddedCols + 32;
        if (m.codes2 != null) b += (long) m.residual.codeBits * m.codes2.length + 32;
        return b;
    }

    /** Codes (16 bits per 8 padded weights), one bit per sign, the float32 scale: see {@link E8pMatrix#effectiveBits}. */
    @Override
    public double effectiveBits() {
        return matrix.effectiveBits();
    }

    @Override
    public void write(SafeTensorsWriter w, String prefix) {
        E8pMatrix m = matrix;
        String p = prefix + ".";
        w.add(p + QuipLinear.QIDXS, DType.I16, new long[]{m.paddedRows, m.paddedCols / 8}, out -> {
            ByteBuffer b = ByteBuffer.allocate(m.codes.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            b.asShortBuffer().put(m.codes);
            while (b.hasRemaining()) out.write(b);
        });
        addBytes(w, p + QuipLinear.SU, QuipLinear.packSigns(m.signIn));
        addBytes(w, p + QuipLinear.SV, QuipLinear.packSigns(m.signOut));
        w.addFloats(p + QuipLinear.WSCALE, new long[]{1}, new float[]{m.scale});
        if (m.codes2 == null) return;
        long[] shape = {m.paddedRows, m.paddedCols / 8};
        if (m.residual == E8pResidual.E81B) {
            byte[] b = new byte[m.codes2.length];
            for (int i = 0; i < b.length; i++) b[i] = (byte) m.codes2[i];
            w.add(p + QuipLinear.QIDXS2, DType.U8, shape, out -> {
                ByteBuffer bb = ByteBuffer.wrap(b);
                while (bb.hasRemaining()) out.write(bb);
            });
        } else {
            w.add(p + QuipLinear.QIDXS2, DType.I16, shape, out -> {
                ByteBuffer b = ByteBuffer.allocate(m.codes2.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                b.asShortBuffer().put(m.codes2);
                while (b.hasRemaining()) out.write(b);
            });
        }
        w.addFloats(p + QuipLinear.RSCALE, new long[]{1}, new float[]{m.residual.scale});
    }

    private static void addBytes(SafeTensorsWriter w, String name, byte[] data) {
        w.add(name, DType.U8, new long[]{data.length}, out -> {
            ByteBuffer b = ByteBuffer.wrap(data);
            while (b.hasRemaining()) out.write(b);
        });
    }

    /** Bytes the tensors take in a file. */
    public long bytes() {
        long b = 2L * matrix.codes.length + (matrix.paddedCols + 7) / 8 + (matrix.paddedRows + 7) / 8 + 4;
        if (matrix.codes2 != null) b += (long) matrix.residual.codeBits / 8 * matrix.codes2.length + 4;
        return b;
    }
}
