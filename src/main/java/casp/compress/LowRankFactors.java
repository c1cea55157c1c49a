package casp.compress;

import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import casp.model.QuipLinear;

/**
 * The stored form of a low-rank projection W' = A B (ALGORITHMS.md section 10): factor A
 * [rows, rank] under {@code <layer>.self_attn.q_u_proj} and B [rank, cols] under {@code q_v_proj}
 * (k likewise), each as exactly one of: GPTQ v1 tensors (packed), QuIP# codes (the tensors of
 * casp.model.QuipLinear; --backend quip), or a float32 weight (dense).
 */
public record LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA,
                             float[] denseB, QuipLayer quipA, QuipLayer quipB) {
    public LowRankFactors {
        if (count(a, denseA, quipA) != 1 || count(b, denseB, quipB) != 1)
            throw new IllegalArgumentException("each factor is exactly one of packed, dense or QuIP#");
        if (quipA != null && (quipA.rows() != rows || quipA.cols() != rank) || quipB != null && (quipB.rows() != rank || quipB.cols() != cols))
            throw new IllegalArgumentException("QuIP# factor shapes do not match [" + rows + ", " + rank + "] x [" + rank + ", " + cols + "]");
    }

    /** GPTQ-or-dense factors (no QuIP#). */
    public LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA, float[] denseB) {
        this(rows, cols, rank, a, b, denseA, denseB, null, null);
    }

    private static int count(Object... xs) {
        int n = 0;
        for (Object x : xs) if (x != null) n++;
        return n;
    }

    /** The stored form of a {@link LowRankLayer}. */
    public static LowRankFactors of(LowRankLayer l) {
        return new LowRankFactors(l.rows(), l.cols(), l.rank(), l.qa instanceof QuantizedWeight w ? GptqFormat.pack(w) : null,
                l.qb instanceof QuantizedWeight w ? GptqFormat.pack(w) : null, l.qa == null ? l.a() : null, l.qb == null ? l.b() : null,
                l.qa instanceof QuipLayer q ? q : null, l.qb instanceof QuipLayer q ? q : null);
    }

    /** Bits of factor A (0: dense float32). */
    public int aBits() {
        return a != null ? a.bits : quipA != null ? quipA.bits() : 0;
    }

    /** Bits of factor B (0: dense float32). */
    public int bBits() {
        return b != null ? b.bits : quipB != null ? quipB.bits() : 0;
    }

    /** How factor A is stored: "gptq-v1", "quip#" or "float32". */
    public String aFormat() {
        return a != null ? "gptq-v1" : quipA != null ? "quip#" : "float32";
    }

    /** How factor B is stored: "gptq-v1", "quip#" or "float32". */
    public String bFormat() {
        return b != null ? "gptq-v1" : quipB != null ? "quip#" : "float32";
    }

    /**
     * Exact stored bits of both factors: per-channel GPTQ codes + fp16 scale + zero, QuIP#'s codes,
     * signs and scales, or 32 per value when dense.
     */
    public long storageBits() {
        return bits(a, quipA, rows, rank) + bits(b, quipB, rank, cols);
    }

    private static long bits(GptqPacking.Tensors t, QuipLayer q, int out, int in) {
        if (q != null) return q.storageBits();
        if (t == null) return 32L * out * in;
        return (long) out * in * t.bits + (long) t.groups() * out * (16 + t.bits); // as LowRankLayer.storageBits counts
    }

    /** Adds both factors to w under the tensor prefixes u (A) and v (B): GPTQ tensors, QuIP# codes, or prefix.weight. */
    public void write(SafeTensorsWriter w, String u, String v) {
        if (quipA != null) quipA.write(w, u);
        else put(w, u, a, denseA, rows, rank);
        if (quipB != null) quipB.write(w, v);
        else put(w, v, b, denseB, rank, cols);
    }

    private static void put(SafeTensorsWriter w, String p, GptqPacking.Tensors t, float[] dense, int out, int in) {
        if (t == null) {
            w.addFloats(p + ".weight", new long[]{out, in}, dense);
            return;
        }
        w.addInts(p + "." + GptqFormat.QWEIGHT, new long[]{GptqPacking.words(t.in, t.bits), t.out}, t.qweight);
        w.addInts(p + "." + GptqFormat.QZEROS, new long[]{t.groups(), GptqPacking.words(t.out, t.bits)}, t.qzeros);
        w.addF16(p + "." + GptqFormat.SCALES, new long[]{t.groups(), t.out}, Fp16.toFloats(t.scales));
        w.addInts(p + "." + GptqFormat.G_IDX, new long[]{t.in}, t.gIdx);
    }

    /**
     * Reads factors written by {@link #write} from st (a checkpoint), or null when st has none under
     * u. The widths (0 for dense) and the rank come from the caller (the block's recorded stats),
     * since GPTQ tensors do not record the widths and QuIP#'s padded codes do not record the rank
     * (rank 0: taken from a GPTQ or dense A's shape).
     */
    public static LowRankFactors read(SafeTensorsFile st, String u, String v, int rows, int cols, int rank, int aBits, int bBits) {
        boolean quipA = st.tensors().containsKey(u + "." + QuipLinear.QIDXS), quipB = st.tensors().containsKey(v + "." + QuipLinear.QIDXS);
        boolean packedA = st.tensors().containsKey(u + "." + GptqFormat.QWEIGHT);
        if (!packedA && !quipA && !st.tensors().containsKey(u + ".weight")) return null;
        if (rank < 1 && !quipA) // GPTQ or dense A: its input width is the rank
            rank = packedA ? (int) st.info(u + "." + GptqFormat.G_IDX).shape()[0] : (int) st.info(u + ".weight").shape()[1];
        if (rank < 1) throw new BadInputException(st.path() + ": QuIP# factors " + u + " / " + v + " have no recorded rank");
        GptqPacking.Tensors a = packedA ? get(st, u, rank, rows, aBits) : null;
        boolean packedB = st.tensors().containsKey(v + "." + GptqFormat.QWEIGHT);
        GptqPacking.Tensors b = packedB ? get(st, v, cols, rank, bBits) : null;
        if ((packedA || quipA) != (aBits > 0) || (packedB || quipB) != (bBits > 0))
            throw new BadInputException(st.path() + ": factors " + u + " / " + v + " do not match their recorded widths");
        String where = st.path().toString();
        QuipLayer qa = quipA ? new QuipLayer(QuipLinear.read(QuipLinear.source(st), where, u, rank, rows), java.util.Map.of()) : null;
        QuipLayer qb = quipB ? new QuipLayer(QuipLinear.read(QuipLinear.source(st), where, v, cols, rank), java.util.Map.of()) : null;
        return new LowRankFactors(rows, cols, rank, a, b, packedA || quipA ? null : st.readFloats(u + ".weight"),
                packedB || quipB ? null : st.readFloats(v + ".weight"), qa, qb);
    }

    private static GptqPacking.Tensors get(SafeTensorsFile st, String p, int in, int out, int bits) {
        return new GptqPacking.Tensors(in, out, bits, st.readInts(p + "." + GptqFormat.QWEIGHT), st.readInts(p + "." + GptqFormat.QZEROS),
                Fp16.fromFloats(st.readFloats(p + "." + GptqFormat.SCALES)), st.readInts(p + "." + GptqFormat.G_IDX));
    }
}
