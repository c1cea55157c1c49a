package casp.model;

import casp.kernel.QuantizedMatrix;

/**
 * A low-rank linear layer y = A (B x) with A [out, rank] and B [rank, in] (CASP's factored W_q and
 * W_k, stored as q_u_proj = A and q_v_proj = B). Each factor is any {@link Linear}: dense float32
 * or quantized. The intermediate B x lives in a buffer owned by this layer, grown on demand, so
 * the token loop allocates nothing once it has its size. Not thread-safe (like the model).
 */
public final class LowRankLinear implements Linear {
    private final Linear a, b;
    private float[] mid = new float[0];

    /** A (in = rank, out) after B (in, out = rank). */
    public LowRankLinear(Linear a, Linear b) {
        if (a.in() != b.out()) {
            throw new IllegalArgumentException("factor shapes do not chain: A is [" + a.out() + ", " + a.in()
                    + "], B is [" + b.out() + ", " + b.in() + "]");
        }
        this.a = a;
        this.b = b;
    }

    /** Dense factors: a [out, rank], b [rank, in] row-major (wrapped, not copied). */
    public static LowRankLinear dense(int out, int rank, int in, float[] a, float[] b) {
        return new LowRankLinear(new DenseLinear(rank, out, a, null), new DenseLinear(in, rank, b, null));
    }

    /** A quantized matrix as a {@link Linear} (no bias): the dequantizing kernels, W never formed. */
    public static Linear quantized(QuantizedMatrix w) {
        return new Linear() {
            @Override public int in() { return w.cols(); }
            @Override public int out() { return w.rows(); }
            @Override
            public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
                if (rows == 1) w.matvec(x, xOff, y, yOff);
                else w.matmul(x, xOff, rows, y, yOff);
            }
        };
    }

    @Override public int in() { return b.in(); }

    @Override public int out() { return a.out(); }

    public int rank() { return a.in(); }

    /** Factor A [out, rank]. */
    public Linear a() { return a; }

    /** Factor B [rank, in]. */
    public Linear b() { return b; }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        int need = Math.multiplyExact(rows, rank());
        if (mid.length < need) mid = new float[need];
        b.forward(x, xOff, mid, 0, rows);
        a.forward(mid, 0, y, yOff, rows);
    }
}
