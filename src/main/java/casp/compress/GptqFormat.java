package casp.compress;

import casp.compress.SequentialCompressor.LinearResult;
import casp.io.ModelFolder;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * Converts a {@link QuantizedWeight} to the AutoGPTQ "gptq" (v1) tensors of the compressed-model
 * format (ALGORITHMS.md section 10): qweight int32 [ceil(in * bits / 32), out], qzeros int32
 * [groups, ceil(out * bits / 32)] holding zero - 1, scales fp16 [groups, out], g_idx int32 [in].
 *
 * <p>When in * bits is not a multiple of 32 (stories260K: in = 172 at 3 bits) the code stream of
 * each output column is padded with zero bits to whole words, so qweight has ceil(in * bits / 32)
 * rows; likewise qzeros along the output dimension. A reader that computes in * bits / 32 with
 * integer division (as AutoGPTQ does) only meets such shapes on layers real models do not have.
 * The scales of a {@link QuantizedWeight} are fp16 values already, so the file reproduces the
 * weight exactly; its zero points lie in [1, 2^bits - 1], which v1 can store.
 */
public final class GptqFormat {
    private GptqFormat() {}

    /** Tensor name suffixes of one quantized linear, after its prefix and a dot. */
    public static final String QWEIGHT = "qweight", QZEROS = "qzeros", SCALES = "scales", G_IDX = "g_idx";

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

    /** Bytes the four tensors take in a file. */
    public static long bytes(GptqPacking.Tensors t) {
        return 4L * t.qweight.length + 4L * t.qzeros.length + 2L * t.scales.length + 4L * t.gIdx.length;
    }

    /** Whether any packed linear's g_idx is not the sequential one (act-order without static groups). */
    static boolean anyActOrder(List<LinearResult> results) {
        for (LinearResult r : results) {
            if (r.packed() == null) continue;
            int[] g = r.packed().gIdx;
            int size = r.packed().groups() == 0 ? 0 : (g.length + r.packed().groups() - 1) / r.packed().groups();
            for (int c = 0; c < g.length; c++) if (size > 0 && g[c] != c / size) return true;
        }
        return false;
    }

    /**
     * GPTQModel's per-module overrides for the packed linears whose width or group size differs
     * from the top-level ones: "+:^" + the escaped module name + "$" -> {"bits", "group_size"}.
     */
    static ObjectNode dynamic(ModelFolder source,
            List<LinearResult> results, int bits, int groupSize) {
        ObjectNode d = new ObjectMapper().createObjectNode();
        for (LinearResult r : results) {
            if (r.packed() == null || r.bits() == bits && r.groupSize() == groupSize) continue;
            String name = source.layer(r.layer(), r.name());
            d.putObject("+:^" + name.replace(".", "\\.") + "$").put("bits", r.bits()).put("group_size", r.groupSize());
        }
        return d;
    }
}
