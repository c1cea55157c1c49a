package casp.quant.gptq;

import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.StorageFormat;

import java.util.Map;
import java.util.function.Predicate;

/**
 * The AutoGPTQ "gptq" (v1) tensors of a scalar-grid weight (ALGORITHMS.md section 10): qweight
 * int32 [ceil(in * bits / 32), out], qzeros int32 [groups, ceil(out * bits / 32)] holding zero - 1,
 * scales fp16 [groups, out], g_idx int32 [in]. RTN and GPTQ results ({@link QuantizedWeight}) are
 * stored so.
 *
 * <p>When in * bits is not a multiple of 32 (stories260K: in = 172 at 3 bits) the code stream of
 * each output column is padded with zero bits to whole words, so qweight has ceil(in * bits / 32)
 * rows; likewise qzeros along the output dimension. A reader that computes in * bits / 32 with
 * integer division (as AutoGPTQ does) only meets such shapes on layers real models do not have.
 * The scales of a {@link QuantizedWeight} are fp16 values already, so the file reproduces the
 * weight exactly; its zero points lie in [1, 2^bits - 1], which v1 can store.
 */
public final class GptqFormat implements StorageFormat {
    public static final GptqFormat INSTANCE = new GptqFormat();

    private GptqFormat() {}

    /** Tensor name suffixes of one quantized linear, after its prefix and a dot. */
    public static final String QWEIGHT = "qweight", QZEROS = "qzeros", SCALES = "scales", G_IDX = "g_idx";

    @Override public String name() { return "gptq-v1"; }

    @Override
    public boolean storedAt(Predicate<String> has, String prefix) {
        return has.test(prefix + "." + QWEIGHT);
    }

    /**
     * Exact stored bits of a weight [rows, cols] at a width and group size, as
     * {@link QuantizedWeight#effectiveBits()} counts them: the codes plus, per group and row, an
     * fp16 scale and a bits-wide zero (g_idx, derivable when monotone, is not counted).
     */
    public static long storageBits(int rows, int cols, int bits, int groupSize) {
        return (long) rows * cols * bits + (long) QuantizedWeight.groupCount(cols, groupSize) * rows * (16 + bits);
    }

    /** Packs q (rows = out features, cols = in features). */
    public static GptqPacking.Tensors pack(QuantizedWeight q) {
        int n = q.rows * q.cols;
        int[] codes = new int[n];
        for (int i = 0; i < n; i++) codes[i] = q.codes[i] & 0xff;
        int groups = q.groups();
        int[] qweight = GptqPacking.packQweight(codes, q.cols, q.rows, q.bits);
        int[] qzeros = GptqPacking.packQzeros(q.zeros, groups, q.rows, q.bits);
        short[] scales = new short[q.scales.length];
        for (int i = 0; i < scales.length; i++) {
            scales[i] = Fp16.fromFloat(q.scales[i]);
            if (Fp16.toFloat(scales[i]) != q.scales[i])
                throw new IllegalArgumentException("scale " + q.scales[i] + " is not an fp16 value");
        }
        return new GptqPacking.Tensors(q.cols, q.rows, q.bits, qweight, qzeros, scales, q.gIdx.clone());
    }

    /** Adds the four tensors of t under prefix. */
    public static void write(SafeTensorsWriter w, String prefix, GptqPacking.Tensors t) {
        String p = prefix + ".";
        w.addInts(p + QWEIGHT, new long[]{GptqPacking.words(t.in, t.bits), t.out}, t.qweight);
        w.addInts(p + QZEROS, new long[]{t.groups(), GptqPacking.words(t.out, t.bits)}, t.qzeros);
        w.addF16(p + SCALES, new long[]{t.groups(), t.out}, Fp16.toFloats(t.scales));
        w.addInts(p + G_IDX, new long[]{t.in}, t.gIdx);
    }

    /** Bytes the four tensors take in a file. */
    public static long bytes(GptqPacking.Tensors t) {
        return 4L * t.qweight.length + 4L * t.qzeros.length + 2L * t.scales.length + 4L * t.gIdx.length;
    }

    /**
     * The weight written by {@link #write}; method and stats as recorded. The group size is that of
     * the first group (-1 when there is one group per row); the grid's symmetry is not stored and
     * reads back as asymmetric (it does not change the weight).
     */
    @Override
    public CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        String p = prefix + ".";
        int[] gIdx = st.readInts(p + G_IDX);
        int groups = 0, first = 0;
        for (int g : gIdx) {
            groups = Math.max(groups, g + 1);
            if (g == 0) first++;
        }
        int[] codes = GptqPacking.unpackQweight(st.readInts(p + QWEIGHT), cols, rows, bits);
        byte[] c = new byte[codes.length];
        for (int i = 0; i < c.length; i++) c[i] = (byte) codes[i];
        int[] zeros = GptqPacking.unpackQzeros(st.readInts(p + QZEROS), groups, rows, bits);
        float[] scales = st.readFloats(p + SCALES); // fp16 values widened: exact
        return new QuantizedWeight(method, rows, cols, bits, groups == 1 ? -1 : first, false, c, scales, zeros, gIdx, stats);
    }

    @Override
    public Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return QuantizedLinear.load(folder, prefix, in, out, bias);
    }
}
