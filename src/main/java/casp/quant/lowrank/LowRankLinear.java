package casp.quant.lowrank;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.WeightStore;
import casp.kernel.QuantizedMatrix;
import casp.kernel.VectorOps;
import casp.model.DenseLinear;
import casp.model.Linear;
import casp.quant.Float32Format;
import casp.quant.QuantizationConfig;
import casp.quant.StorageFormat;
import casp.quant.gptq.GptqFormat;

/**
 * A low-rank linear layer y = A (B x) (+ bias) with A [out, rank] and B [rank, in]: CASP's factored
 * W_q and W_k, stored as q_u_proj = A and q_v_proj = B (k likewise). Each factor is any
 * {@link Linear}: dense float32 or quantized. The intermediate B x lives in a buffer owned by this
 * layer, grown on demand, so the token loop allocates nothing once it has its size. Not
 * thread-safe (like the model).
 */
public final class LowRankLinear implements Linear {
    private final Linear a, b;
    private final float[] bias;
    private float[] mid = new float[0];

    /** A (in = rank, out) after B (in, out = rank), no bias. */
    public LowRankLinear(Linear a, Linear b) {
        this(a, b, null);
    }

    /** A after B, plus bias [out] (null for none). */
    public LowRankLinear(Linear a, Linear b, float[] bias) {
        if (a.in() != b.out()) {
            throw new IllegalArgumentException("factor shapes do not chain: A is [" + a.out() + ", " + a.in()
                    + "], B is [" + b.out() + ", " + b.in() + "]");
        }
        if (bias != null && bias.length != a.out()) throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + a.out());
        this.a = a;
        this.b = b;
        this.bias = bias;
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

    /** The tensor prefix of factor A of the projection at prefix ("...q_proj" -> "...q_u_proj"). */
    public static String uPrefix(String prefix) {
        return factorPrefix(prefix, "_u_proj");
    }

    /** The tensor prefix of factor B ("...q_proj" -> "...q_v_proj"). */
    public static String vPrefix(String prefix) {
        return factorPrefix(prefix, "_v_proj");
    }

    private static String factorPrefix(String prefix, String suffix) {
        if (!prefix.endsWith("_proj")) throw new IllegalArgumentException("not a projection: " + prefix);
        return prefix.substring(0, prefix.length() - "_proj".length()) + suffix;
    }

    /**
     * The low-rank layer stored under prefix's factor tensors in a compressed folder (prefix e.g.
     * "model.layers.0.self_attn.q_proj": factors ...q_u_proj and ...q_v_proj, each either GPTQ
     * tensors (.qweight, ...), QuIP# codes (.qidxs, ..., see {@link casp.quant.quip.QuipLinear}), AQLM codes (.codes,
     * ..., see {@link casp.quant.aqlm.AqlmLinear}) or a float .weight), or null when the folder has no factors for it.
     * The rank is A's input width; when A is QuIP# or AQLM codes (whose width is padded) it comes from
     * quantization_config.casp.low_rank[prefix].rank.
     */
    public static LowRankLinear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        if (!prefix.endsWith("_proj")) return null;
        WeightStore w = folder.weights();
        String u = uPrefix(prefix), v = vPrefix(prefix);
        StorageFormat fu = LowRankFormat.factorFormat(w::has, u), fv = LowRankFormat.factorFormat(w::has, v);
        if (fu == null && fv == null) return null;
        String where = folder.dir().toString();
        if (fu == null || fv == null) throw new BadInputException(where + ": low-rank " + prefix + " has only one of its factors " + u + ", " + v);
        int rank;
        if (fu == GptqFormat.INSTANCE) rank = (int) w.info(u + "." + GptqFormat.G_IDX).shape()[0];
        else if (fu == Float32Format.INSTANCE) rank = (int) w.info(u + ".weight").shape()[1];
        else {
            QuantizationConfig qc = QuantizationConfig.of(folder);
            QuantizationConfig.LowRankEntry e = qc == null || qc.casp() == null || qc.casp().lowRank() == null ? null
                    : qc.casp().lowRank().get(prefix);
            if (e == null || e.rank() == null)
                throw new BadInputException(where + ": factor " + u + " is QuIP# or AQLM codes but quantization_config.casp.low_rank has no rank for "
                        + prefix);
            rank = e.rank();
        }
        if (rank < 1 || rank > Math.min(in, out))
            throw new BadInputException(where + ": factor " + u + " has rank " + rank + ", outside [1, " + Math.min(in, out) + "]");
        quipRank(w, where, u, 1, rank);
        quipRank(w, where, v, 0, rank);
        return new LowRankLinear(fu.load(folder, u, rank, out, null), fv.load(folder, v, in, rank, null), bias);
    }

    /**
     * QuIP# codes pad the rank to a Hadamard size, so a wrong recorded rank with the same padding
     * would load; the padded size must be exactly the recorded rank's (axis 1: A's inputs, 0: B's outputs).
     */
    private static void quipRank(WeightStore w, String where, String p, int axis, int rank) {
        String q = p + "." + casp.quant.quip.QuipLinear.QIDXS;
        if (!w.has(q) || w.info(q).shape().length != 2) return;
        long stored = w.info(q).shape()[axis] * (axis == 1 ? casp.kernel.E8p.DIM : 1);
        long expected = casp.kernel.Hadamard.paddedSize(rank, axis == 1 ? casp.kernel.E8p.DIM : 1);
        if (stored != expected)
            throw new BadInputException(where + ": tensor '" + q + "' holds codes for a padded rank of " + stored
                    + ", but quantization_config.casp.low_rank records rank " + rank + " (padded " + expected + ")");
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
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out());
    }
}
