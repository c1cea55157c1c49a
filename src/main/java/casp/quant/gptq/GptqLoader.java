package casp.quant.gptq;

import casp.io.BadInputException;
import casp.io.GptqConfig;
import casp.io.ModelFolder;
import casp.io.TensorInfo;
import casp.io.WeightStore;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Reads one GPTQ-quantized linear of a folder written by casp, AutoGPTQ, GPTQModel or transformers
 * (settings: {@link GptqConfig}): v1 and v2 zero points, codes packed in 8, 16, 32 or 64-bit words,
 * per-module widths and exclusions (GPTQModel's dynamic, casp's per-linear bits), act-order g_idx,
 * a missing g_idx (groups of group_size in input order).
 */
final class GptqLoader {
    private GptqLoader() {}

    static QuantizedLinear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        WeightStore w = folder.weights();
        String qw = prefix + ".qweight";
        if (!w.has(qw)) return null;
        String where = folder.dir().toString();
        JsonNode qc = GptqConfig.settings(folder);
        if (qc == null)
            throw new BadInputException(where + ": tensor '" + qw + "' is quantized but config.json has no quantization_config"
                    + " and there is no " + GptqConfig.AUTOGPTQ_FILE);
        GptqConfig cfg = GptqConfig.parse(qc, GptqConfig.source(folder));
        String method = cfg.method();
        // casp folders may mix formats: with --backend quip, factors at widths QuIP# lacks are GPTQ tensors
        boolean caspMixed = qc.path("casp").path("method").asText("").equals("casp");
        boolean autoGptqFile = folder.config().quantization() == null && method.isEmpty();
        if (!method.equals("gptq") && !caspMixed && !autoGptqFile)
            throw new BadInputException(where + ": quantization_config.quant_method '" + method + "' is not supported (only gptq)");
        GptqConfig.Module m = cfg.module(prefix);
        if (m == null)
            throw new BadInputException(where + ": tensor '" + qw + "' is quantized but quantization_config.dynamic excludes " + prefix);
        int bits = m.bits(), packBits = cfg.packBits();
        try {
            GptqPacking.checkPackBits(bits, packBits);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(where + ": " + prefix + ": " + e.getMessage());
        }
        int[] gIdx;
        if (w.has(prefix + ".g_idx")) {
            gIdx = ints(w, prefix + ".g_idx", in);
            for (int c = 0; c < in; c++) {
                if (gIdx[c] < 0 || gIdx[c] >= in)
                    throw new BadInputException(where + ": tensor '" + prefix + ".g_idx' has entry " + gIdx[c] + " at " + c);
            }
        } else {
            gIdx = GptqPacking.sequentialGroupIndex(in, m.groupSize() <= 0 ? in : m.groupSize());
        }
        int groups = 0;
        for (int g : gIdx) groups = Math.max(groups, g + 1);
        long[] qweight = words(w, qw, packBits, GptqPacking.wordsOf(in, bits, packBits), out);
        long[] qzeros = words(w, prefix + ".qzeros", packBits, groups, GptqPacking.wordsOf(out, bits, packBits));
        TensorInfo si = w.info(prefix + ".scales");
        if (si.dtype() != DType.F16 || !Arrays.equals(si.shape(), new long[]{groups, out}))
            throw new BadInputException(where + ": tensor '" + si.name() + "' is " + si.dtype() + " " + Arrays.toString(si.shape())
                    + ", expected F16 [" + groups + ", " + out + "]");
        short[] scales = w.file(si.name()).readHalfs(si.name());
        try {
            int[] zeros = GptqPacking.decodeZeros(qzeros, groups, out, bits, packBits, cfg.v1());
            GptqPacking.Tensors t = new GptqPacking.Tensors(in, out, bits, GptqPacking.qweightToInt32(qweight, in, out, bits, packBits),
                    GptqPacking.packQzeros(zeros, groups, out, bits), scales, gIdx);
            return QuantizedLinear.fromGptq(t, bias);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(where + ": quantized linear '" + prefix + "': " + e.getMessage(), e);
        }
    }

    private static int[] ints(WeightStore w, String name, long... shape) {
        TensorInfo t = w.info(name);
        if (t.dtype() != DType.I32 || !Arrays.equals(t.shape(), shape))
            throw new BadInputException(w.dir() + ": tensor '" + name + "' is " + t.dtype() + " " + Arrays.toString(t.shape())
                    + ", expected I32 " + Arrays.toString(shape));
        return w.ints(name);
    }

    /** An integer tensor of packBits-bit words, each word's bits in the low bits of a long. */
    private static long[] words(WeightStore w, String name, int packBits, long... shape) {
        DType type = switch (packBits) {
            case 8 -> DType.I8;
            case 16 -> DType.I16;
            case 32 -> DType.I32;
            default -> DType.I64;
        };
        TensorInfo t = w.info(name);
        if (t.dtype() != type || !Arrays.equals(t.shape(), shape))
            throw new BadInputException(w.dir() + ": tensor '" + name + "' is " + t.dtype() + " " + Arrays.toString(t.shape())
                    + ", expected " + type + " " + Arrays.toString(shape) + " (pack_dtype int" + packBits + ")");
        ByteBuffer b = ByteBuffer.wrap(w.file(name).readBytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        long[] v = new long[Math.toIntExact(t.numel())];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (packBits) {
                case 8 -> b.get(i) & 0xffL;
                case 16 -> b.getShort(2 * i) & 0xffffL;
                case 32 -> b.getInt(4 * i) & 0xffffffffL;
                default -> b.getLong(8 * i);
            };
        }
        return v;
    }
}
