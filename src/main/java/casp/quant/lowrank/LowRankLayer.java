package casp.quant.lowrank;

import casp.io.SafeTensorsWriter;
import casp.kernel.Gemm;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A projection W [rows, cols] stored as low-rank factors W' = A B (CASP's q/k): A [rows, rank]
 * (written as q_u_proj / k_u_proj) and B [rank, cols] (q_v_proj / k_v_proj), each a compressed
 * layer of its own (any code format, or a float32 weight).
 */
public final class LowRankLayer implements CompressedLayer {
    private final int rows, cols, rank;
    private final String method;
    private final CompressedLayer a, b;
    private final Map<String, Number> stats;

    public LowRankLayer(String method, int rows, int cols, int rank, CompressedLayer a, CompressedLayer b, Map<String, Number> stats) {
        if (a.rows() != rows || a.cols() != rank) throw new IllegalArgumentException("factor A is not " + rows + " x " + rank);
        if (b.rows() != rank || b.cols() != cols) throw new IllegalArgumentException("factor B is not " + rank + " x " + cols);
        if (a instanceof LowRankLayer || b instanceof LowRankLayer) throw new IllegalArgumentException("a factor cannot be low-rank itself");
        this.method = method;
        this.rows = rows;
        this.cols = cols;
        this.rank = rank;
        this.a = a;
        this.b = b;
        this.stats = Collections.unmodifiableMap(new LinkedHashMap<>(stats));
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    public int rank() { return rank; }
    @Override public String method() { return method; }
    @Override public Map<String, Number> stats() { return stats; }
    @Override public StorageFormat format() { return LowRankFormat.INSTANCE; }

    /** Factor A [rows, rank] as stored. */
    public CompressedLayer factorA() { return a; }

    /** Factor B [rank, cols] as stored. */
    public CompressedLayer factorB() { return b; }

    /** Width of factor A (0: float32). */
    public int aBits() { return a.bits(); }

    /** Width of factor B (0: float32). */
    public int bBits() { return b.bits(); }

    /** Factor B's width, or 32 when B is float32: the width a report gives the projection. */
    @Override
    public int bits() {
        return b.bits() == 0 ? 32 : b.bits();
    }

    /** How factor A is stored: its format's name ("gptq-v1", "quip#", "aqlm", "float32"). */
    public String aFormat() { return a.format().name(); }

    /** How factor B is stored. */
    public String bFormat() { return b.format().name(); }

    /** Factor A [rows, rank] as used (dequantized when quantized); a new array. */
    public float[] a() { return a.dequantize(); }

    /** Factor B [rank, cols] as used (dequantized when quantized); a new array. */
    public float[] b() { return b.dequantize(); }

    /** A B, [rows, cols]. */
    @Override
    public float[] dequantize() {
        float[] fa = a(), fb = b();
        float[] w = new float[rows * cols];
        Gemm.sgemm(false, false, rows, cols, rank, 1f, fa, 0, rank, fb, 0, cols, 0f, w, 0, cols);
        return w;
    }

    /** Bits stored for both factors, exact. */
    @Override
    public long storageBits() {
        return a.storageBits() + b.storageBits();
    }

    /** Storage bits per original weight: {@link #storageBits()} / (rows cols). */
    @Override
    public double effectiveBits() {
        return (double) storageBits() / ((long) rows * cols);
    }

    /** Both factors, under prefix's factor prefixes ({@link LowRankLinear#uPrefix}, {@link LowRankLinear#vPrefix}). */
    @Override
    public void write(SafeTensorsWriter w, String prefix) {
        a.write(w, LowRankLinear.uPrefix(prefix));
        b.write(w, LowRankLinear.vPrefix(prefix));
    }

    @Override
    public Linear linear(float[] bias) {
        return new LowRankLinear(a.linear(null), b.linear(null), bias);
    }
}
