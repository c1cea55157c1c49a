package casp.quant.aqlm;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.kernel.AdditiveQuant;
import casp.kernel.AqlmCodebookMatvec;
import casp.kernel.VectorOps;
import casp.model.DenseLinear;
import casp.model.Linear;
import casp.quant.QuantizationConfig;
import casp.quant.aqlm.AqlmTensors;

/**
 * A linear layer stored in AQLM form ({@link AqlmTensors}: codes, codebooks, per-row scales), the
 * runtime of `casp compress --method aqlm` folders and of Hugging Face "aqlm" checkpoints with
 * in_group_size 8 or 16 and out_group_size 1.
 *
 * <p>Three ways to run it, chosen by shape:
 * <ul>
 *   <li>many rows per codeword (out >= {@link #LUT_ROWS_PER_CODEWORD} x 2^B, e.g. 4096-row layers
 *       with 8-bit codebooks, 2x8): each input row goes through {@link AdditiveQuant#matvec}, a
 *       table of every codeword's dot product with each 8-input group of x, then one lookup per
 *       code. On a 4096 x 4096 2x8 layer it holds 8 MiB of 16-bit codes instead of a 64 MiB float
 *       weight and took 3.5-4.8 ms per mat-vec against the dense path's 2.7-3.2 ms (2 shared
 *       cores, JDK 17);</li>
 *   <li>large codebooks against the rows (1x16: 65536 codewords) and more than
 *       {@link #DENSE_MAX_WEIGHTS} weights: {@link AqlmCodebookMatvec} reads each code's codeword
 *       from the codebook and multiplies it with its group of x. The codes stay 16-bit, W is never
 *       formed (a 7B 1x16 model: 1.6 GiB of codes instead of 26 GB of float32);</li>
 *   <li>small layers (stories260K: 64 rows, 256 codewords) are decoded once at load into a float32
 *       weight and run as a {@link DenseLinear}.</li>
 * </ul>
 * Not thread-safe (scratch buffers, like the model).
 */
public final class AqlmLinear implements Linear {
    /** Rows per codeword above which the lookup-table mat-vec beats a dense one. */
    public static final int LUT_ROWS_PER_CODEWORD = 4;
    /** Weights above which a layer too short for the table mat-vec keeps its codes instead of a float32 copy. */
    public static final long DENSE_MAX_WEIGHTS = 1L << 20;

    private final int in, out, groups, m, k, gsize;
    /** Codebooks [M, K, G] and scales [out] (small). */
    private final float[] codebooks, scales;
    private final float[] bias;
    /** The decoded weight when the layer runs dense, else null. */
    private final DenseLinear dense;
    private final float[] lut, xg, codebooksT;
    /** The codes in the lookup mat-vec's layout ([groups * M, out], 16-bit), or null. */
    private final char[] codesT;
    /** The codes in AQLM's order ([out, groups, M], 16-bit) for the codebook mat-vec, or null. */
    private final char[] codes;
    /** A zero-padded input row when in is not a whole number of groups. */
    private float[] padded = new float[0];

    /** How forward passes run: chosen by shape, or forced (tests compare the paths). */
    enum Mode { AUTO, DENSE, LOOKUP, CODEBOOK }

    private AqlmLinear(AqlmTensors t, int in, float[] bias, Mode mode) {
        int gsize = t.inGroup();
        if (t.groups() != (in + gsize - 1) / gsize)
            throw new IllegalArgumentException(t.groups() + " groups of " + gsize + " do not cover " + in + " inputs");
        if (bias != null && bias.length != t.rows())
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + t.rows());
        this.in = in;
        this.out = t.rows();
        this.groups = t.groups();
        this.m = t.numCodebooks();
        this.k = t.codebookSize();
        this.gsize = gsize;
        this.codebooks = t.codebooks();
        this.scales = t.scales();
        this.bias = bias;
        if (mode == Mode.AUTO) {
            if (gsize == AqlmTensors.IN_GROUP && (long) out >= (long) LUT_ROWS_PER_CODEWORD * k) mode = Mode.LOOKUP;
            else mode = (long) out * in > DENSE_MAX_WEIGHTS ? Mode.CODEBOOK : Mode.DENSE;
        }
        if (mode == Mode.LOOKUP && gsize != AqlmTensors.IN_GROUP)
            throw new IllegalArgumentException("the table mat-vec takes groups of " + AqlmTensors.IN_GROUP + " inputs, not " + gsize);
        lut = mode == Mode.LOOKUP ? new float[t.groups() * t.numCodebooks() * t.codebookSize()] : null;
        xg = mode == Mode.LOOKUP ? new float[t.groups() * AqlmTensors.IN_GROUP] : null;
        codebooksT = mode == Mode.LOOKUP ? AdditiveQuant.transposeCodebooks(t.codebooks(), t.numCodebooks(), t.codebookSize()) : null;
        codesT = mode == Mode.LOOKUP ? AdditiveQuant.transposeCodes(t.codes(), out, t.groups() * t.numCodebooks()) : null;
        codes = mode == Mode.CODEBOOK ? chars(t.codes()) : null;
        dense = mode == Mode.DENSE ? new DenseLinear(in, out, decode(t, in), bias) : null;
    }

    private static char[] chars(int[] codes) {
        char[] c = new char[codes.length];
        for (int i = 0; i < c.length; i++) c[i] = (char) codes[i];
        return c;
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
        if (t.inGroup() != AqlmTensors.IN_GROUP)
            return AqlmCodebookMatvec.decode(chars(t.codes()), t.rows(), t.groups(), t.numCodebooks(), t.codebooks(),
                    t.codebookSize(), t.inGroup(), t.scales(), in);
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
        int inGroup = f.inGroupSize();
        if (inGroup != 8 && inGroup != 16 || f.outGroupSize() != 1)
            throw new BadInputException(where + ": quantization_config has in_group_size " + inGroup + ", out_group_size "
                    + f.outGroupSize() + "; supported are 8 or 16, and 1");
        int m = f.numCodebooks(), b = f.nbitsPerCodebook();
        if (qc.isCasp() && qc.casp().backend().equals("aqlm")) {
            Integer w = qc.casp().bitsOf(prefix);
            if (w == null || b < 1 || w * AqlmTensors.IN_GROUP % b != 0)
                throw new BadInputException(where + ": tensor '" + prefix + ".codes' has no width in quantization_config.casp.bits that is a "
                        + "whole number of " + b + "-bit codebooks");
            m = w * AqlmTensors.IN_GROUP / b;
        }
        AqlmTensors t = AqlmTensors.read(folder.weights(), prefix, out, in, m, b, inGroup);
        return of(t, in, bias);
    }

    @Override public int in() { return in; }

    @Override public int out() { return out; }

    /** Whether forward passes use the lookup-table mat-vec. */
    public boolean usesLookup() { return codesT != null; }

    /** Whether forward passes read codewords straight from the codebooks (the codes kept, no float weight). */
    public boolean usesCodebook() { return codes != null; }

    /** The weight this layer stands for, [out, in] row-major. */
    public float[] dequantize() {
        if (dense != null) return dense.weight().clone();
        if (codes != null) return AqlmCodebookMatvec.decode(codes, out, groups, m, codebooks, k, gsize, scales, in);
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
        if (codes != null) {
            int width = groups * gsize;
            for (int r = 0; r < rows; r++) {
                float[] src = x;
                int off = xOff + r * in;
                if (width != in) { // the last group's missing inputs read zeros
                    if (padded.length < width) padded = new float[width];
                    System.arraycopy(x, off, padded, 0, in);
                    src = padded;
                    off = 0;
                }
                AqlmCodebookMatvec.matvec(codes, out, groups, m, codebooks, k, gsize, scales, src, off, y, yOff + r * out);
            }
            if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out);
            return;
        }
        for (int r = 0; r < rows; r++) {
            AdditiveQuant.matvec(codesT, out, groups, m, codebooksT, k, scales, in,
                    x, xOff + r * in, y, yOff + r * out, lut, xg);
        }
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, out);
    }
}
