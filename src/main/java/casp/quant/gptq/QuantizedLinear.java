package casp.quant.gptq;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.kernel.Fp16;
import casp.kernel.GptqPacking;
import casp.kernel.QuantizedMatrix;
import casp.kernel.VectorOps;
import casp.model.Linear;
import casp.model.LlamaModel;

/**
 * A linear layer whose weight is stored as 2, 3, 4 or 8-bit GPTQ codes: the runtime form of a
 * compressed model. Forward passes go through {@link QuantizedMatrix}'s dequantizing kernels, so
 * the float weight is never formed.
 *
 * <p>Groups whose size is not a multiple of 16 (the kernel's slot width; e.g. 86, the largest
 * group dividing stories260K's intermediate width 172) are stored padded: each group is given
 * ceil(size / 16) * 16 stored columns, the extra ones with code 0 reading extra inputs that are
 * always zero. The input rows are then copied into a zero-padded buffer before the kernel runs;
 * layers with regular groups read their input in place.
 */
public final class QuantizedLinear implements Linear {
    private final int in, out, bits;
    private final QuantizedMatrix matrix;
    /** Input width the matrix expects: in, or more when groups are padded. */
    private final int paddedIn;
    private final float[] bias;
    private float[] padded = new float[0];

    private QuantizedLinear(int in, int out, int bits, QuantizedMatrix matrix, float[] bias) {
        if (bias != null && bias.length != out)
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + out);
        this.in = in;
        this.out = out;
        this.bits = bits;
        this.matrix = matrix;
        this.paddedIn = matrix.cols();
        this.bias = bias;
    }

    /** The layer y = W x + bias of an already packed W [out = rows, in = cols]; bias [out] or null. */
    public static QuantizedLinear of(QuantizedMatrix w, float[] bias) {
        return new QuantizedLinear(w.cols(), w.rows(), w.bits(), w, bias);
    }

    /**
     * Builds the layer from GPTQ v1 tensors (see {@link GptqPacking}); bias [out] or null.
     * Throws IllegalArgumentException when the tensors are inconsistent.
     */
    public static QuantizedLinear fromGptq(GptqPacking.Tensors t, float[] bias) {
        int in = t.in, out = t.out;
        if (t.gIdx.length != in) throw new IllegalArgumentException("g_idx has " + t.gIdx.length + " entries, in=" + in);
        int groups = 0;
        for (int g : t.gIdx) {
            if (g < 0) throw new IllegalArgumentException("negative g_idx entry " + g);
            groups = Math.max(groups, g + 1);
        }
        int[] count = new int[groups];
        for (int g : t.gIdx) count[g]++;
        if (groups == 1 || count[0] % 16 == 0) {
            QuantizedMatrix m = QuantizedMatrix.fromGptq(t.qweight, t.qzeros, t.scales, t.gIdx, in, out, t.bits, count[0]);
            return new QuantizedLinear(in, out, t.bits, m, bias);
        }
        return new QuantizedLinear(in, out, t.bits, padded(t, groups, count), bias);
    }

    /** The padded layout described in the class comment. */
    private static QuantizedMatrix padded(GptqPacking.Tensors t, int groups, int[] count) {
        int in = t.in, out = t.out;
        int size = 0;
        for (int c : count) {
            if (c == 0) throw new IllegalArgumentException("g_idx leaves a group empty");
            size = Math.max(size, c);
        }
        int p = (size + 15) / 16 * 16;
        int cols = Math.multiplyExact(groups, p);
        // perm[stored column] = input; group g's members, in input order, then padding inputs in, in+1, ...
        int[] perm = new int[cols];
        int[] fill = new int[groups];
        for (int c = 0; c < in; c++) {
            int g = t.gIdx[c];
            perm[g * p + fill[g]++] = c;
        }
        int pad = in;
        for (int g = 0; g < groups; g++) for (int o = fill[g]; o < p; o++) perm[g * p + o] = pad++;
        int[] codes = GptqPacking.unpackQweight(t.qweight, in, out, t.bits);
        int[] stored = new int[Math.multiplyExact(out, cols)];
        for (int r = 0; r < out; r++) {
            for (int j = 0; j < cols; j++) {
                int c = perm[j];
                if (c < in) stored[r * cols + j] = codes[r * in + c];
            }
        }
        int[] z = GptqPacking.unpackQzeros(t.qzeros, groups, out, t.bits);
        float[] sc = new float[out * groups], ze = new float[out * groups];
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < out; r++) {
                sc[r * groups + g] = Fp16.toFloat(t.scales[g * out + r]);
                ze[r * groups + g] = z[g * out + r];
            }
        }
        return QuantizedMatrix.fromCodes(out, cols, t.bits, p, stored, sc, ze, perm);
    }

    /**
     * Random bits-wide codes with a scale and zero point per group of groupSize inputs
     * ({@link QuantizedMatrix#random}) for every linear asked for, as a GPTQ folder would load: for
     * throughput benchmarks of the compressed runtime (the weights are not a quantization of anything).
     */
    public static LlamaModel.LinearSource random(int bits, int groupSize, long seed) {
        long[] n = {0};
        return (prefix, in, out, bias) -> of(QuantizedMatrix.random(out, in, bits, groupSize, seed * 1000 + n[0]++), bias);
    }

    /**
     * The quantized linear stored under {@code prefix} (e.g. "model.layers.0.self_attn.q_proj") in a
     * folder written by casp, AutoGPTQ, GPTQModel or transformers: tensors prefix.qweight, .qzeros,
     * .scales and usually .g_idx (see {@link GptqLoader}). Returns null when the folder has no
     * prefix.qweight (the layer is a plain float weight). Inconsistent shapes, dtypes or settings
     * are a {@link BadInputException} naming the tensor.
     */
    public static QuantizedLinear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return GptqLoader.load(folder, prefix, in, out, bias);
    }

    @Override public int in() { return in; }

    @Override public int out() { return out; }

    public int bits() { return bits; }

    /** The packed matrix the kernels run on (its cols may exceed in: see the class comment). */
    public QuantizedMatrix matrix() { return matrix; }

    /** The bias [out], or null. */
    public float[] bias() { return bias; }

    /** The weight this layer stands for, [out, in] row-major (for tests and small layers). */
    public float[] dequantize() {
        float[] wp = matrix.dequantize();
        if (paddedIn == in) return wp;
        float[] w = new float[out * in];
        for (int r = 0; r < out; r++) System.arraycopy(wp, r * paddedIn, w, r * in, in);
        return w;
    }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        float[] src = x;
        int off = xOff;
        if (paddedIn != in) {
            int n = Math.multiplyExact(rows, paddedIn);
            if (padded.length < n) padded = new float[n]; // the padding columns stay zero
            for (int r = 0; r < rows; r++) System.arraycopy(x, xOff + r * in, padded, r * paddedIn, in);
            src = padded;
            off = 0;
        }
        if (rows == 1) matrix.matvec(src, off, y, yOff);
        else matrix.matmul(src, off, rows, y, yOff);
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out);
    }
}
