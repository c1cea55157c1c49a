package casp.kernel;

/**
 * The Hessian of a linear layer's proxy loss, H = (2/N) sum over calibration tokens of x x^T
 * ([in, in], ALGORITHMS.md section 2), accumulated batch by batch in float64 through
 * {@link Syrk#accumulate} (float32 blocks folded into float64, so millions of tokens keep their
 * precision). Not thread-safe.
 */
public final class HessianAccumulator {
    private final int dim;
    private final double[] sum;
    private long tokens;
    private boolean finished;

    public HessianAccumulator(int dim) {
        if (dim < 1) throw new IllegalArgumentException("dimension must be positive, got " + dim);
        this.dim = dim;
        this.sum = new double[Math.multiplyExact(dim, dim)];
    }

    public int dim() { return dim; }

    /** The running sum of x x^T, unscaled, row-major [dim, dim] (live: later adds change it). */
    public double[] sum() {
        if (finished) throw new IllegalStateException("the Hessian was already finished (scaled in place)");
        return sum;
    }

    /** Tokens added so far. */
    public long tokens() { return tokens; }

    /** Adds rows tokens x [rows, dim] (row-major from x[off]). */
    public void add(float[] x, int off, int rows) {
        if (off < 0 || off + (long) rows * dim > x.length)
            throw new IllegalArgumentException("x holds fewer than " + rows + " x " + dim + " values from " + off);
        if (finished) throw new IllegalStateException("the Hessian was already finished");
        Syrk.accumulate(x, off, dim, rows, dim, sum, 0, dim);
        tokens += rows;
    }

    /**
     * H = (2/N) sum x x^T, row-major [dim, dim] (all zeros when no token was added). Scales the
     * accumulator in place (no copy: H of a 11008-wide layer is ~1 GB) and returns it; no more
     * tokens can be added afterwards.
     */
    public double[] finish() {
        if (!finished && tokens > 0) {
            double s = 2.0 / tokens;
            for (int i = 0; i < sum.length; i++) sum[i] *= s;
        }
        finished = true;
        return sum;
    }
}
