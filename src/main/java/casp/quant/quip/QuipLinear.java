package casp.quant.quip;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.TensorInfo;
import casp.io.WeightStore;
import casp.kernel.E8p;
import casp.kernel.E8pMatrix;
import casp.kernel.E8pResidual;
import casp.kernel.Hadamard;
import casp.kernel.VectorOps;
import casp.model.Linear;
import casp.quant.QuantizationConfig;
import casp.tensor.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A linear layer stored as QuIP# E8P12 codes (ALGORITHMS.md sections 7 and 10; see
 * {@link E8pMatrix} for the algebra). Tensors under the linear's prefix, in place of its .weight:
 * <ul>
 *   <li>{@code qidxs}: I16 [rows', cols' / 8], one 16-bit E8P12 code per 8 weights of a row
 *       ({@link E8p} gives the bit layout);</li>
 *   <li>{@code su}: U8 [cols' / 8], the input signs packed 8 per byte, least significant bit first,
 *       a set bit meaning -1;</li>
 *   <li>{@code sv}: U8 [ceil(rows' / 8)], the output signs likewise;</li>
 *   <li>{@code wscale}: F32 [1], the scale of the codewords;</li>
 *   <li>at 3 and 4 bits also {@code qidxs2}, the residual stage's codes ({@link E8pResidual}):
 *       U8 [rows', cols' / 8] of E81B (3 bits) or I16 of E8P12 (4 bits), and {@code rscale}: F32 [1],
 *       the residual's scale (2.04 / 3.45).</li>
 * </ul>
 * rows' >= out and cols' >= in are the padded lengths (see {@link Hadamard#paddedSize}): equal to
 * out / in when those have a Hadamard transform. This is casp's own layout: QuIP#'s reference
 * stores fp16 signs and a different code order, and it has matrices (order 172) that we pad around.
 *
 * <p>Forward passes run on the codes with the Hadamard transforms at inference (ALGORITHMS.md
 * 7.4; {@link E8pMatrix#multiply}): the weight stays at 2 bits in memory and is never formed.
 * {@link #weight()} materialises it for tests and tools. Not thread-safe (it owns scratch buffers,
 * like the model).
 */
public final class QuipLinear implements Linear {
    /** Tensor name suffixes (after the prefix and a dot). */
    public static final String QIDXS = "qidxs", SU = "su", SV = "sv", WSCALE = "wscale", QIDXS2 = "qidxs2", RSCALE = "rscale";
    /** quantization_config.quant_method of a QuIP# folder. */
    public static final String METHOD = "quip#";

    private final E8pMatrix matrix;
    private final float[] bias;
    private final E8pMatrix.Scratch scratch = new E8pMatrix.Scratch();

    /** The layer of a stored matrix, plus bias [out] (null for none). */
    public QuipLinear(E8pMatrix matrix, float[] bias) {
        if (bias != null && bias.length != matrix.rows)
            throw new IllegalArgumentException("bias has " + bias.length + " values, expected " + matrix.rows);
        this.matrix = matrix;
        this.bias = bias;
    }

    /** Where the tensors of {@link #read} come from (a model's weights, a checkpoint file). */
    public interface Source {
        boolean has(String name);

        TensorInfo info(String name);

        /** The raw little-endian bytes of a tensor. */
        byte[] bytes(String name);
    }

    /** The tensors of a model folder as a {@link Source}. */
    public static Source source(WeightStore w) {
        return new Source() {
            public boolean has(String name) { return w.has(name); }
            public TensorInfo info(String name) { return w.info(name); }
            public byte[] bytes(String name) { return w.file(name).readBytes(name); }
        };
    }

    /** The tensors of one safetensors file (a checkpoint) as a {@link Source}. */
    public static Source source(SafeTensorsFile f) {
        return new Source() {
            public boolean has(String name) { return f.tensors().containsKey(name); }
            public TensorInfo info(String name) { return f.info(name); }
            public byte[] bytes(String name) { return f.readBytes(name); }
        };
    }

    /**
     * The QuIP# linear stored under prefix in a compressed folder, or null when the folder has no
     * prefix.qidxs. Bad tensors or a missing / other quantization_config are {@link BadInputException}s.
     */
    public static QuipLinear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        WeightStore w = folder.weights();
        if (!w.has(prefix + "." + QIDXS)) return null;
        QuantizationConfig qc = QuantizationConfig.of(folder);
        String where = folder.dir().toString();
        if (qc == null)
            throw new BadInputException(where + ": tensor '" + prefix + "." + QIDXS + "' is QuIP# codes but config.json has no quantization_config");
        String method = qc.quantMethod();
        String backend = qc.casp() == null ? "" : qc.casp().backend();
        if (!method.equals(METHOD) && !backend.equals(METHOD) && !backend.equals("quip"))
            throw new BadInputException(where + ": tensor '" + prefix + "." + QIDXS + "' is QuIP# codes but quantization_config.quant_method is '"
                    + method + "'");
        return new QuipLinear(read(source(w), where, prefix, in, out), bias);
    }

    /** Reads and checks the tensors of one linear [out, in] under prefix; where names the file in messages. */
    public static E8pMatrix read(Source s, String where, String prefix, int in, int out) {
        String qn = prefix + "." + QIDXS;
        TensorInfo qi = s.info(qn);
        long[] shape = qi.shape();
        if (qi.dtype() != DType.I16 || shape.length != 2 || shape[0] < out || shape[1] * E8p.DIM < in
                || shape[0] > Integer.MAX_VALUE / 2 || shape[1] > Integer.MAX_VALUE / 16)
            throw bad(where, qn, qi, "I16 [>= " + out + ", >= " + (in + 7) / 8 + "]");
        int rowsP = (int) shape[0], colsP = (int) shape[1] * E8p.DIM;
        if (!Hadamard.supported(rowsP) || !Hadamard.supported(colsP))
            throw new BadInputException(where + ": tensor '" + qn + "' has padded shape " + rowsP + " x " + colsP
                    + ", which has no Hadamard transform here");
        byte[] qb = s.bytes(qn);
        short[] codes = new short[qb.length / 2];
        ByteBuffer.wrap(qb).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(codes);
        byte[] su = signs(s, where, prefix + "." + SU, colsP), sv = signs(s, where, prefix + "." + SV, rowsP);
        String sn = prefix + "." + WSCALE;
        TensorInfo si = s.info(sn);
        if (si.dtype() != DType.F32 || !Arrays.equals(si.shape(), new long[]{1})) throw bad(where, sn, si, "F32 [1]");
        float scale = ByteBuffer.wrap(s.bytes(sn)).order(ByteOrder.LITTLE_ENDIAN).getFloat();
        if (!Float.isFinite(scale)) throw new BadInputException(where + ": tensor '" + sn + "' is " + scale);
        String q2 = prefix + "." + QIDXS2;
        if (!s.has(q2)) return new E8pMatrix(out, in, rowsP, colsP, codes, su, sv, scale);
        TensorInfo q2i = s.info(q2);
        if (!Arrays.equals(q2i.shape(), shape) || q2i.dtype() != DType.U8 && q2i.dtype() != DType.I16)
            throw bad(where, q2, q2i, "U8 or I16 " + Arrays.toString(shape));
        E8pResidual res = q2i.dtype() == DType.U8 ? E8pResidual.E81B : E8pResidual.E8P;
        byte[] b2 = s.bytes(q2);
        short[] codes2 = new short[codes.length];
        if (res == E8pResidual.E81B) for (int i = 0; i < codes2.length; i++) codes2[i] = (short) (b2[i] & 0xff);
        else ByteBuffer.wrap(b2).order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(codes2);
        String rn = prefix + "." + RSCALE;
        if (!s.has(rn)) throw new BadInputException(where + ": tensor '" + q2 + "' has no '" + rn + "' beside it");
        TensorInfo ri = s.info(rn);
        if (ri.dtype() != DType.F32 || !Arrays.equals(ri.shape(), new long[]{1})) throw bad(where, rn, ri, "F32 [1]");
        float rs = ByteBuffer.wrap(s.bytes(rn)).order(ByteOrder.LITTLE_ENDIAN).getFloat();
        if (rs != res.scale)
            throw new BadInputException(where + ": tensor '" + rn + "' is " + rs + "; the " + res + " stage's scale is " + res.scale);
        return new E8pMatrix(out, in, rowsP, colsP, codes, su, sv, scale, res, codes2);
    }

    private static byte[] signs(Source s, String where, String name, int n) {
        TensorInfo t = s.info(name);
        if (t.dtype() != DType.U8 || !Arrays.equals(t.shape(), new long[]{(n + 7) / 8}))
            throw bad(where, name, t, "U8 [" + (n + 7) / 8 + "]");
        return unpackSigns(s.bytes(name), n);
    }

    private static BadInputException bad(String where, String name, TensorInfo t, String expected) {
        return new BadInputException(where + ": tensor '" + name + "' is " + t.dtype() + " " + Arrays.toString(t.shape())
                + ", expected " + expected);
    }

    /** Signs +-1 packed 8 per byte, least significant bit first, set bit = -1. */
    public static byte[] packSigns(byte[] signs) {
        byte[] out = new byte[(signs.length + 7) / 8];
        for (int i = 0; i < signs.length; i++) if (signs[i] < 0) out[i >> 3] |= (byte) (1 << (i & 7));
        return out;
    }

    /** Inverse of {@link #packSigns}. */
    public static byte[] unpackSigns(byte[] packed, int n) {
        byte[] s = new byte[n];
        for (int i = 0; i < n; i++) s[i] = (byte) (((packed[i >> 3] >> (i & 7)) & 1) != 0 ? -1 : 1);
        return s;
    }

    /** The stored form. */
    public E8pMatrix matrix() { return matrix; }

    /** The weight [out, in], materialised (a new array each call). */
    public float[] weight() { return matrix.dequantize(); }

    /** The bias [out], or null. */
    public float[] bias() { return bias; }

    @Override public int in() { return matrix.cols; }

    @Override public int out() { return matrix.rows; }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int rows) {
        matrix.multiply(x, xOff, rows, y, yOff, scratch);
        if (bias != null) VectorOps.addRowToEach(bias, 0, y, yOff, rows, matrix.rows);
    }
}
