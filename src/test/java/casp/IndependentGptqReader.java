package casp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A second GPTQ reader for tests, written from AutoGPTQ's and GPTQModel's loading rules and
 * sharing no code with casp's: its own safetensors parsing (one model.safetensors or the shards
 * of model.safetensors.index.json), quantization_config with bits, group_size and GPTQModel's
 * dynamic (first matching pattern, "-:" leaves a module unquantized), int32 words, v1 zero points
 * read both ways: GPTQModel's (whole word plus a one per field) and AutoGPTQ's (each field plus
 * one), which must agree on what casp writes. Gives W = scale * (q - zero) in float32 per module.
 */
public final class IndependentGptqReader {
    private IndependentGptqReader() {}

    /** Raw tensors of a folder: name -> (dtype, shape, bytes). */
    public record Tensor(String dtype, long[] shape, byte[] data) {}

    public static Map<String, Tensor> tensors(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<String, Tensor> all = new LinkedHashMap<>();
        Path index = dir.resolve("model.safetensors.index.json");
        java.util.Set<String> files = new java.util.LinkedHashSet<>();
        if (Files.exists(index)) json.readTree(index.toFile()).get("weight_map").forEach(n -> files.add(n.asText()));
        else files.add("model.safetensors");
        for (String f : files) {
            byte[] b = Files.readAllBytes(dir.resolve(f));
            ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
            int n = (int) bb.getLong(0);
            JsonNode header = json.readTree(new String(b, 8, n, java.nio.charset.StandardCharsets.UTF_8));
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().equals("__metadata__")) continue;
                JsonNode t = e.getValue();
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                int from = (int) t.get("data_offsets").get(0).asLong(), to = (int) t.get("data_offsets").get(1).asLong();
                all.put(e.getKey(), new Tensor(t.get("dtype").asText(), shape, java.util.Arrays.copyOfRange(b, 8 + n + from, 8 + n + to)));
            }
        }
        return all;
    }

    static long[] int32Words(Tensor t) {
        if (!t.dtype.equals("I32")) throw new AssertionError("expected I32, got " + t.dtype);
        ByteBuffer bb = ByteBuffer.wrap(t.data).order(ByteOrder.LITTLE_ENDIAN);
        long[] w = new long[t.data.length / 4];
        for (int i = 0; i < w.length; i++) w[i] = bb.getInt(4 * i) & 0xffffffffL;
        return w;
    }

    /** fp16 bits to float, from the IEEE 754 definition. */
    static float half(int h) {
        int sign = (h >>> 15) & 1, exp = (h >>> 10) & 31, frac = h & 1023;
        double v = exp == 0 ? frac * Math.pow(2, -24) : exp == 31 ? (frac == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : (1 + frac / 1024.0) * Math.pow(2, exp - 15);
        return (float) (sign == 1 ? -v : v);
    }

    /** The bits of module prefix under quantization_config (top level, then dynamic), or 0 when excluded. */
    static int bitsOf(JsonNode qc, String prefix) {
        JsonNode dyn = qc.get("dynamic");
        if (dyn != null) {
            for (Iterator<Map.Entry<String, JsonNode>> it = dyn.fields(); it.hasNext(); ) {
                var e = it.next();
                String k = e.getKey();
                String regex = k.startsWith("-:") || k.startsWith("+:") ? k.substring(2) : k;
                if (!Pattern.compile(regex).matcher(prefix).lookingAt()) continue;
                if (k.startsWith("-:")) return 0;
                return e.getValue().path("bits").asInt(qc.get("bits").asInt());
            }
        }
        return qc.get("bits").asInt();
    }

    /** W [out * in] of every GPTQ module of the folder, by prefix. */
    public static Map<String, float[]> weights(Path dir) throws IOException {
        JsonNode qc = new ObjectMapper().readTree(dir.resolve("config.json").toFile()).get("quantization_config");
        if (!qc.get("quant_method").asText().equals("gptq") || !qc.path("checkpoint_format").asText("gptq").equals("gptq"))
            throw new AssertionError("not a GPTQ v1 folder: " + qc);
        Map<String, Tensor> t = tensors(dir);
        Map<String, float[]> out = new LinkedHashMap<>();
        for (String name : t.keySet()) {
            if (!name.endsWith(".qweight")) continue;
            String p = name.substring(0, name.length() - ".qweight".length());
            int bits = bitsOf(qc, p);
            if (bits == 0) throw new AssertionError(p + " is quantized but dynamic excludes it");
            Tensor gi = t.get(p + ".g_idx"), sc = t.get(p + ".scales");
            int in = (int) gi.shape()[0], outDim = (int) sc.shape()[1], groups = (int) sc.shape()[0];
            ByteBuffer g = ByteBuffer.wrap(gi.data).order(ByteOrder.LITTLE_ENDIAN), s = ByteBuffer.wrap(sc.data).order(ByteOrder.LITTLE_ENDIAN);
            int[] gIdx = new int[in];
            for (int c = 0; c < in; c++) gIdx[c] = g.getInt(4 * c);
            float[][] scales = new float[groups][outDim];
            for (int i = 0; i < groups; i++) for (int r = 0; r < outDim; r++) scales[i][r] = half(s.getShort(2 * (i * outDim + r)) & 0xffff);
            int[][] q = GptqToolLayout.unpackRows(int32Words(t.get(name)), in, outDim, bits, 32);
            long[] qz = int32Words(t.get(p + ".qzeros"));
            int[][] zeros = GptqToolLayout.gptqModelZeros(qz, groups, outDim, bits, 32);
            int[][] autoGptq = GptqToolLayout.autoGptqZeros(qz, groups, outDim, bits, 32);
            if (!java.util.Arrays.deepEquals(zeros, autoGptq)) throw new AssertionError(p + ": AutoGPTQ and GPTQModel read the zero points differently");
            out.put(p, GptqToolLayout.dequantize(q, zeros, scales, gIdx));
        }
        return out;
    }
}
