package casp.compress;

import casp.io.AqlmTensors;
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
 * casp.model.QuipLinear; --backend quip), AQLM codes, codebooks and scales ({@link AqlmTensors};
 * --backend aqlm), or a float32 weight (dense).
 */
public record LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA,
                             float[] denseB, QuipLayer quipA, QuipLayer quipB, AqlmWeight aqlmA, AqlmWeight aqlmB) {
    public LowRankFactors {
        if (count(a, denseA, quipA, aqlmA) != 1 || count(b, denseB, quipB, aqlmB) != 1)
            throw new IllegalArgumentException("each factor is exactly one of packed, dense, QuIP# or AQLM");
        if (aqlmA != null && (aqlmA.rows != rows || aqlmA.cols != rank) || aqlmB != null && (aqlmB.rows != rank || aqlmB.cols != cols))
            throw new IllegalArgumentException("AQLM factor shapes do not match [" + rows + ", " + rank + "] x [" + rank + ", " + cols + "]");
        if (quipA != null && (quipA.rows() != rows || quipA.cols() != rank) || quipB != null && (quipB.rows() != rank || quipB.cols() != cols))
            throw new IllegalArgumentException("QuIP# factor shapes do not match [" + rows + ", " + rank + "] x [" + rank + ", " + cols + "]");
    }

    /** GPTQ-or-dense factors (no QuIP#). */
    public LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA, float[] denseB) {
        this(rows, cols, rank, a, b, denseA, denseB, null, null, null, null);
    }

    /** GPTQ, dense or QuIP# factors (no AQLM). */
    public LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA, float[] denseB,
                          QuipLayer quipA, QuipLayer quipB) {
        this(rows, cols, rank, a, b, denseA, denseB, quipA, quipB, null, null);
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
                l.qa instanceof QuipLayer q ? q : null, l.qb instanceof QuipLayer q ? q : null,
                l.qa instanceof AqlmWeight q ? q : null, l.qb instanceof AqlmWeight q ? q : null);
    }

    /** Bits of factor A (0: dense float32). */
    public int aBits() {
        return a != null ? a.bits : quipA != null ? quipA.bits() : aqlmA != null ? aqlmA.bits() : 0;
    }

    /** Bits of factor B (0: dense float32). */
    public int bBits() {
        return b != null ? b.bits : quipB != null ? quipB.bits() : aqlmB != null ? aqlmB.bits() : 0;
    }

    /** How factor A is stored: "gptq-v1", "quip#", "aqlm" or "float32". */
    public String aFormat() {
        return a != null ? "gptq-v1" : quipA != null ? "quip#" : aqlmA != null ? "aqlm" : "float32";
    }

    /** How factor B is stored: "gptq-v1", "quip#", "aqlm" or "float32". */
    public String bFormat() {
        return b != null ? "gptq-v1" : quipB != null ? "quip#" : aqlmB != null ? "aqlm" : "float32";
    }

    /**
     * Exact stored bits of both factors: per-channel GPTQ codes + fp16 scale + zero, QuIP#'s codes,
     * signs and scales, or 32 per value when dense.
     */
    public long storageBits() {
        return bits(a, quipA, aqlmA, rows, rank) + bits(b, quipB, aqlmB, rank, cols);
    }

    private static long bits(GptqPacking.Tensors t, QuipLayer q, AqlmWeight aq, int out, int in) {
        if (aq != null) return AqlmWeight.storageBits(aq.rows, aq.cols, aq.numCodebooks, aq.codebookBits);
        if (q != null) return q.storageBits();
        if (t == null) return 32L * out * in;
        return (long) out * in * t.bits + (long) t.groups() * out * (16 + t.bits); // as LowRankLayer.storageBits counts
    }

    /** Adds both factors to w under the tensor prefixes u (A) and v (B): GPTQ tensors, QuIP# codes, or prefix.weight. */
    public void write(SafeTensorsWriter w, String u, String v) {
        if (quipA != null) quipA.write(w, u);
        else if (aqlmA != null) aqlmA.tensors().write(w, u);
        else put(w, u, a, denseA, rows, rank);
        if (quipB != null) quipB.write(w, v);
        else if (aqlmB != null) aqlmB.tensors().write(w, v);
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
     * since GPTQ tensors do not record the widths and QuIP#'s padded codes and AQLM's groups of 8 do
     * not record the rank (rank 0: taken from a GPTQ or dense A's shape). An AQLM factor's codebook
     * configuration is read from its codebooks tensor [M, 2^B, 1, 8].
     */
    public static LowRankFactors read(SafeTensorsFile st, String u, String v, int rows, int cols, int rank, int aBits, int bBits) {
        boolean quipA = st.tensors().containsKey(u + "." + QuipLinear.QIDXS), quipB = st.tensors().containsKey(v + "." + QuipLinear.QIDXS);
        boolean aqA = st.tensors().containsKey(u + "." + AqlmTensors.CODES), aqB = st.tensors().containsKey(v + "." + AqlmTensors.CODES);
        boolean packedA = st.tensors().containsKey(u + "." + GptqFormat.QWEIGHT);
        if (!packedA && !quipA && !aqA && !st.tensors().containsKey(u + ".weight")) return null;
        if (rank < 1 && !quipA && !aqA) // GPTQ or dense A: its input width is the rank
            rank = packedA ? (int) st.info(u + "." + GptqFormat.G_IDX).shape()[0] : (int) st.info(u + ".weight").shape()[1];
        if (rank < 1) throw new BadInputException(st.path() + ": QuIP# / AQLM factors " + u + " / " + v + " have no recorded rank");
        GptqPacking.Tensors a = packedA ? get(st, u, rank, rows, aBits) : null;
        boolean packedB = st.tensors().containsKey(v + "." + GptqFormat.QWEIGHT);
        GptqPacking.Tensors b = packedB ? get(st, v, cols, rank, bBits) : null;
        if ((packedA || quipA || aqA) != (aBits > 0) || (packedB || quipB || aqB) != (bBits > 0))
            throw new BadInputException(st.path() + ": factors " + u + " / " + v + " do not match their recorded widths");
        String where = st.path().toString();
        QuipLayer qa = quipA ? new QuipLayer(QuipLinear.read(QuipLinear.source(st), where, u, rank, rows), java.util.Map.of()) : null;
        QuipLayer qb = quipB ? new QuipLayer(QuipLinear.read(QuipLinear.source(st), where, v, cols, rank), java.util.Map.of()) : null;
        AqlmWeight xa = aqA ? aqlm(st, u, rows, rank) : null, xb = aqB ? aqlm(st, v, rank, cols) : null;
        return new LowRankFactors(rows, cols, rank, a, b, packedA || quipA || aqA ? null : st.readFloats(u + ".weight"),
                packedB || quipB || aqB ? null : st.readFloats(v + ".weight"), qa, qb, xa, xb);
    }

    /** An AQLM factor [out, in] under p; M and B from its codebooks tensor [M, 2^B, 1, 8] (checked by the read). */
    private static AqlmWeight aqlm(SafeTensorsFile st, String p, int out, int in) {
        long[] s = st.info(p + "." + AqlmTensors.CODEBOOKS).shape();
        if (s.length != 4 || s[0] < 1 || s[0] > 16 || Long.bitCount(s[1]) != 1)
            throw new BadInputException(st.path() + ": tensor '" + p + "." + AqlmTensors.CODEBOOKS + "' has shape " + java.util.Arrays.toString(s)
                    + ", expected [M, 2^B, 1, 8]");
        return AqlmWeight.of(AqlmTensors.read(st, p, out, in, (int) s[0], Long.numberOfTrailingZeros(s[1])), in, java.util.Map.of());
    }

    private static GptqPacking.Tensors get(SafeTensorsFile st, String p, int in, int out, int bits) {
        return new GptqPacking.Tensors(in, out, bits, st.readInts(p + "." + GptqFormat.QWEIGHT), st.readInts(p + "." + GptqFormat.QZEROS),
                Fp16.fromFloats(st.readFloats(p + "." + GptqFormat.SCALES)), st.readInts(p + "." + GptqFormat.G_IDX));
    }
}
