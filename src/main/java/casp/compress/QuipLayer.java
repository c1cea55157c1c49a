package casp.compress;

import casp.io.SafeTensorsWriter;
import casp.kernel.E8pMatrix;
import casp.model.QuipLinear;
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
public final class QuipLayer implements QuantizedLayer, StoredTensors {
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

    /** 2: E8P12 spends 16 bits on 8 weights. */
    public int bits() { return 2; }

    @Override
    public float[] dequantize() {
        return matrix.dequantize();
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
    }

    private static void addBytes(SafeTensorsWriter w, String name, byte[] data) {
        w.add(name, DType.U8, new long[]{data.length}, out -> {
            ByteBuffer b = ByteBuffer.wrap(data);
            while (b.hasRemaining()) out.write(b);
        });
    }

    @Override
    public long bytes() {
        return 2L * matrix.codes.length + (matrix.paddedCols + 7) / 8 + (matrix.paddedRows + 7) / 8 + 4;
    }
}
