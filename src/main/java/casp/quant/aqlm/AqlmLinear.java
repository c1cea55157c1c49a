package casp.quant.aqlm;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.kernel.AdditiveQuant;
import casp.kernel.VectorOps;
import casp.model.DenseLinear;
import casp.model.Linear;
import casp.quant.QuantizationConfig;
import casp.quant.aqlm.AqlmTensors;

/**
 * A linear layer stored in AQLM form ({@link AqlmTensors}: codes, codebooks, per-row scales), the
 * runtime of `casp compress --method aqlm` folders and of Hugging Face "aqlm" checkpoints with
 * in_group_size 8 and out_group_size 1.
 *
 * <p>Two ways to run it, chosen by shape: when the layer has many rows per codeword
 * (out >= {@link #LUT_ROWS_PER_CODEWORD} x 2^B, e.g. 4096-row layers with 8-bit codebooks), each
 * input row goes through {@link AdditiveQuant#matvec}: a table of every codeword's dot product
 * with each 8-input group of x, then one lookup per code, and W is never formed (memory: the
 * codes). Smaller layers (stories260K: 64 rows, 256 codewords) are decoded once at load into a
 * float32 weight and run as a {@link DenseLinear}: there the table would cost more than the
 * mat-vec. The lookup path trades time for memory: on a 4096 x 4096 2x8 layer it holds 8 MiB of
 * 16-bit codes instead of a 64 MiB float weight and took 3.5-4.8 ms per mat-vec against the dense
 * path's 2.7-3.2 ms (2 shared cores, JDK 17). Not thread-safe (scratch buffers, like the model).
 */
public final class AqlmLinear implements Linear {
    /** Rows per codeword above which the lookup-table mat-vec beats a dense one. */
    public static final int LUT_ROWS_PER_CODEWORD = 4;

    private final int in, out, groups, m, k;
    /** Codebooks [M, K, 8] and scales [out] (small); the codes are kept only in the lookup layout. */
    private final float[] codebooks, scales;
    private final float[] bias;
    /** The decoded weight when the layer runs dense, else null. */
    private final DenseLinear dense;
    private final float[] lut, xg, codebooksT;
    /** The codes in the lookup mat-vec's layout ([groups * M, out], 16-bit), or null when the layer runs dense. */
    private final char[] codesT;

    /** How forward passes run: chosen by shape, or forced (tests compare the two paths). */
    enum Mode { AUTO, DENSE, LOOKUP }

    private AqlmLinear(AqlmTensors t, int in, float[] bias, Mode mode) {
        if (t.groups() != (in + AqlmTensors.IN_GROUP - 1) / AqlmTensors.IN_GROUP)
            throw new IllegalArgumentException(t.groups() + " groups of 8 do not cover " + in + " inputs");
        if (bias != null && bias.length != t.rows())
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + t.rows());
        this.in = in;
        this.out = t.rows();
        this.groups = t.groups();
        this.m = t.numCodebooks();
        this.k = t.codebookSize();
        this.codebooks = t.codebooks();
        this.scales = t.scales();
        this.bias = bias;
        boolean useLut = mode == Mode.LOOKUP
                || mode == Mode.AUTO && (long) out >= (long) LUT_ROWS_PER_CODEWORD * t.codebookSize();
        if (useLut) {
            dense = null;
            lut = new float[t.groups() * t.numCodebooks() * t.codebookSize()];
            xg = new float[t.groups() * AqlmTensors.IN_GROUP];
            codebooksT = AdditiveQuant.transposeCodebooks(t.codebooks(), t.numCodebooks(), t.codebookSize());
            codesT = AdditiveQuant.transposeCodes(t.codes(), out, t.groups() * t.numCodebooks());
        } else {
            dense = new DenseLinear(in, out, decode(t, in), bias);
            lut = xg = codebooksT = null;
            codesT = null;
        }
    }

    /** The layer for stored tensors (in = input features; bias [out] or null); the runtime path chosen by shape. */
    public static AqlmLinear of(AqlmTensors t, int in, float[] bias) {
        return new AqlmLinear(t, in, bias, Mode.AUTO);
    }

    /** The layer with a forced runtime path. */
    static AqlmLinear of(AqlmTensors t, int in, float[] bias, Mode mode) {
        return new AqlmLinear(t, in, bias, mode);
    }

    /** W [out, in] decoded from the tensors. */
    static float[] decode(AqlmTensors t, int in) {
        float[] w = new float[t.rows() * in];
        AdditiveQuant.decode(t.codes(), t.rows(), t.groups(), t.numCodebooks(), t.codebooks(), t.codebookSize(), t.scales(), in, w);
        return w;
    }

    /**
     * The AQLM linear stored under prefix (tensors prefix.codes, .codebooks, .scales) in a model
     * folder, or null when there is no prefix.codes. quantization_config must say quant_method "aqlm"
     * with num_codebooks, nbits_per_codebook, in_group_size 8 and out_group_size 1; anything else,
     * or tensors that do not match, is a {@link BadInputException} naming the folder and tensor.
     * In a CASP folder (quantization_config.casp: method "casp", backend "aqlm") the widths differ per
     * linear: the codebook count is quantization_config.casp.bits[prefix] x 8 / nbits_per_codebook.
     */
    public static AqlmLinear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        if (!AqlmTensors.present(folder.weights(), prefix)) return null;
        String where = folder.dir().toString();
        QuantizationConfig qc = QuantizationConfig.of(folder);
        if (qc == null)
            throw new BadInputException(where + ": tensor '" + prefix + ".codes' is AQLM-quantized but config.json has no quantization_config");
        String method = qc.quantMethod();
        if (!method.equals("aqlm"))
            throw new BadInputException(where + ": tensor '" + prefix + ".codes' needs quantization_config.quant_method \"aqlm\", got '" + method + "'");
        QuantizationConfig.AqlmFields f = qc.aqlm();
        if (f.inGroupSize() != AqlmTensors.IN_GROUP || f.outGroupSize() != 1)
            throw new BadInputException(where + ": quantization_config has in_group_size " + f.inGroupSize() + ", out_group_size "
                    + f.outGroupSize() + "; supported is 8 and 1");
        int m = f.numCodebooks(), b = f.nbitsPerCodebook();
        if (qc.isCasp() && qc.casp().backend().equals("aqlm")) {
            Integer w = qc.casp().bitsOf(prefix);
            if (w == null || b < 1 || w * AqlmTensors.IN_GROUP % b != 0)
                throw new BadInputException(where + ": tensor '" + prefix + ".codes' has no width in quantization_config.casp.bits that is a "
                        + "whole number of " + b + "-bit codebooks");
            m = w * AqlmTensors.IN_GROUP / b;
        }
        AqlmTensors t = AqlmTensors.read(folder.weights(), prefix, out, in, m, b);
        return of(t, in, bias);
    }

    @Override public int in() { return in; }

    @Override public int out() { return out; }

    /** Whether forward passes use the lookup-table mat-vec (true) or a decoded float weight. */
    public boolean usesLookup() { return dense == null; }

    /** The weight this layer stands for, [out, in] row-major. */
    public float[] dequantize() {
        if (dense != null) return dense.weight().clone();
        int gm = groups * m;
        int[] codes = new int[out * gm];
        for (int j = 0; j < gm; j++) for (int r = 0; r < out; r++) codes[r * gm + j] = codesT[j * out + r];
        return decode(new AqlmTensors(out, groups, m, Integer.numberOfTrailingZeros(k), codes, codebooks, scales), in);
    }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        if (dense != null) {
            dense.forward(x, xOff, y, yOff, rows);
            return;
        }
        for (int r = 0; r < rows; r++) {
            AdditiveQuant.matvec(codesT, out, groups, m, codebooksT, k, scales, in,
                    x, xOff + r * in, y, yOff + r * out, lut, xg);
        }
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out);
    }
}
