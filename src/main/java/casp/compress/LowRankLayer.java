package casp.compress;

import casp.kernel.Gemm;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A projection W [rows, cols] stored as low-rank factors W' = A B (CASP's q/k): A [rows, rank]
 * (written as q_u_proj / k_u_proj) and B [rank, cols] (q_v_proj / k_v_proj), each either quantized
 * (a {@link QuantizedWeight}, GPTQ v1 tensors, a {@link QuipLayer}, QuIP# codes, or an
 * {@link AqlmWeight}, AQLM codes and codebooks) or dense
 * (float32; then the field is null).
 */
public final class LowRankLayer implements QuantizedLayer {
    private final int rows, cols, rank;
    private final String method;
    /** Quantized factors ({@link QuantizedWeight} or {@link QuipLayer}), or null when that factor is dense. */
    public final QuantizedLayer qa, qb;
    /** Dense factors (the values the quantized ones stand for when quantized). */
    private final float[] a, b;
    private final Map<String, Number> stats;

    LowRankLayer(String method, int rows, int cols, int rank, float[] a, float[] b, QuantizedLayer qa, QuantizedLayer qb,
                 Map<String, Number> stats) {
        if (a.length != (long) rows * rank || b.length != (long) rank * cols) throw new IllegalArgumentException("factor shapes do not match");
        if (qa != null && (qa.rows() != rows || qa.cols() != rank)) throw new IllegalArgumentException("quantized A has the wrong shape");
        if (qb != null && (qb.rows() != rank || qb.cols() != cols)) throw new IllegalArgumentException("quantized B has the wrong shape");
        for (QuantizedLayer q : new QuantizedLayer[]{qa, qb}) {
            if (q != null && !(q instanceof QuantizedWeight) && !(q instanceof QuipLayer) && !(q instanceof AqlmWeight))
                throw new IllegalArgumentException("factors are scalar-grid, QuIP# or AQLM weights, not " + q.method());
        }
        this.method = method;
        this.rows = rows;
        this.cols = cols;
        this.rank = rank;
        this.a = a;
        this.b = b;
        this.qa = qa;
        this.qb = qb;
        this.stats = Collections.unmodifiableMap(new LinkedHashMap<>(stats));
    }

    @Override public int rows() { return rows; }
    @Override public int cols() { return cols; }
    public int rank() { return rank; }
    @Override public String method() { return method; }

    /** Width of factor A (0: dense). */
    public int aBits() { return bitsOf(qa); }

    /** Width of factor B (0: dense). */
    public int bBits() { return bitsOf(qb); }

    /** The nominal width of a factor: the grid's bits, QuIP#'s 2 / 3 / 4; 0 for a dense (null) factor. */
    static int bitsOf(QuantizedLayer q) {
        if (q == null) return 0;
        if (q instanceof AqlmWeight a) return a.bits();
        return q instanceof QuipLayer p ? p.bits() : ((QuantizedWeight) q).bits;
    }
    @Override public Map<String, Number> stats() { return stats; }

    /** Factor A [rows, rank] as used (dequantized when quantized); a new array. */
    public float[] a() { return qa != null ? qa.dequantize() : a.clone(); }

    /** Factor B [rank, cols] as used (dequantized when quantized); a new array. */
    public float[] b() { return qb != null ? qb.dequantize() : b.clone(); }

    /** A B, [rows, cols]. */
    @Override
    public float[] dequantize() {
        float[] fa = a(), fb = b();
        float[] w = new float[rows * cols];
        Gemm.sgemm(false, false, rows, cols, rank, 1f, fa, 0, rank, fb, 0, cols, 0f, w, 0, cols);
        return w;
    }

    /** Bits stored for both factors (dense factors as float32), exact. */
    public long storageBits() {
        return factorBits(qa, (long) rows * rank) + factorBits(qb, (long) rank * cols);
    }

    /** Storage bits per original weight: {@link #storageBits()} / (rows cols). */
    @Override
    public double effectiveBits() {
        return (double) storageBits() / ((long) rows * cols);
    }

    private static long factorBits(QuantizedLayer q, long params) {
        if (q == null) return 32 * params;
        if (q instanceof AqlmWeight a) return AqlmWeight.storageBits(a.rows, a.cols, a.numCodebooks, a.codebookBits);
        return q instanceof QuipLayer p ? p.storageBits() : storageBits((QuantizedWeight) q);
    }

    /**
     * Exact bits of a scalar-grid weight as {@link QuantizedWeight#effectiveBits()} counts them:
     * rows cols bits codes plus, per group and row, an fp16 scale and a bits-wide zero.
     */
    public static long storageBits(QuantizedWeight q) {
        return storageBits(q.rows, q.cols, q.bits, q.groupSize);
    }

    /** {@link #storageBits(QuantizedWeight)} from the shape: rows cols bits + groups rows (16 + bits). */
    public static long storageBits(int rows, int cols, int bits, int groupSize) {
        return (long) rows * cols * bits + (long) QuantizedWeight.groupCount(cols, groupSize) * rows * (16 + bits);
    }
}
