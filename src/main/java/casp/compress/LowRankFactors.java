package casp.compress;

import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;

/**
 * The stored form of a low-rank projection W' = A B (ALGORITHMS.md section 10): factor A
 * [rows, rank] under {@code <layer>.self_attn.q_u_proj} and B [rank, cols] under {@code q_v_proj}
 * (k likewise), each as GPTQ v1 tensors when quantized, else as a float32 weight (then the packed
 * field is null and the dense one is set).
 */
public record LowRankFactors(int rows, int cols, int rank, GptqPacking.Tensors a, GptqPacking.Tensors b, float[] denseA,
                             float[] denseB) {
    public LowRankFactors {
        if ((a == null) == (denseA == null) || (b == null) == (denseB == null))
            throw new IllegalArgumentException("each factor is either packed or dense");
    }

    /** The stored form of a {@link LowRankLayer}. */
    public static LowRankFactors of(LowRankLayer l) {
        return new LowRankFactors(l.rows(), l.cols(), l.rank(), l.qa == null ? null : GptqFormat.pack(l.qa),
                l.qb == null ? null : GptqFormat.pack(l.qb), l.qa == null ? l.a() : null, l.qb == null ? l.b() : null);
    }

    /** Bits of factor A (0: dense float32). */
    public int aBits() {
        return a == null ? 0 : a.bits;
    }

    /** Bits of factor B (0: dense float32). */
    public int bBits() {
        return b == null ? 0 : b.bits;
    }

    /** Adds both factors to w under the tensor prefixes u (A) and v (B): GPTQ tensors, or prefix.weight. */
    public void write(SafeTensorsWriter w, String u, String v) {
        put(w, u, a, denseA, rows, rank);
        put(w, v, b, denseB, rank, cols);
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
     * u. The widths (0 for dense) come from the caller, since GPTQ tensors do not record them.
     */
    public static LowRankFactors read(SafeTensorsFile st, String u, String v, int rows, int cols, int aBits, int bBits) {
        boolean packedA = st.tensors().containsKey(u + "." + GptqFormat.QWEIGHT);
        if (!packedA && !st.tensors().containsKey(u + ".weight")) return null;
        int rank = packedA ? (int) st.info(u + "." + GptqFormat.G_IDX).shape()[0] : (int) st.info(u + ".weight").shape()[1];
        GptqPacking.Tensors a = packedA ? get(st, u, rank, rows, aBits) : null;
        boolean packedB = st.tensors().containsKey(v + "." + GptqFormat.QWEIGHT);
        GptqPacking.Tensors b = packedB ? get(st, v, cols, rank, bBits) : null;
        if (packedA != (aBits > 0) || packedB != (bBits > 0))
            throw new BadInputException(st.path() + ": factors " + u + " / " + v + " do not match their recorded widths");
        return new LowRankFactors(rows, cols, rank, a, b, packedA ? null : st.readFloats(u + ".weight"),
                packedB ? null : st.readFloats(v + ".weight"));
    }

    private static GptqPacking.Tensors get(SafeTensorsFile st, String p, int in, int out, int bits) {
        return new GptqPacking.Tensors(in, out, bits, st.readInts(p + "." + GptqFormat.QWEIGHT), st.readInts(p + "." + GptqFormat.QZEROS),
                Fp16.fromFloats(st.readFloats(p + "." + GptqFormat.SCALES)), st.readInts(p + "." + GptqFormat.G_IDX));
    }
}
