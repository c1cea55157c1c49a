package casp.quant.aqlm;

import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.io.TensorInfo;
import casp.io.WeightStore;
import casp.tensor.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The stored form of one AQLM linear layer (ALGORITHMS.md sections 8 and 10), in the layout of the
 * AQLM inference library and Hugging Face's "aqlm" quantization method (in_group_size 8,
 * out_group_size 1):
 * <ul>
 *   <li>{@code <prefix>.codes}: I8 when nbits_per_codebook <= 8, else I16; [out, groups, M]. A code
 *       c >= 2^(B-1) is stored as c - 2^B (AQLM's pack_int_data) and read back modulo 2^B;</li>
 *   <li>{@code <prefix>.codebooks}: F16 [M, 2^B, 1, 8];</li>
 *   <li>{@code <prefix>.scales}: F16 [out, 1, 1, 1].</li>
 * </ul>
 * casp's own extension, codebooks shared across layers: a layer whose codebooks are those of the
 * same-named linear of decoder layer L stores {@code <prefix>.codebooks_layer} (I32 [1], holding L)
 * instead of {@code <prefix>.codebooks}; the reader takes the codebooks tensor of the prefix with
 * its "layers.N." replaced by "layers.L.". Readers that do not know the extension see a layer
 * without codebooks.
 * groups = ceil(in / 8). AQLM itself requires in to be a multiple of 8; casp also stores layers
 * whose width is not (stories260K's down_proj has 172 inputs): the last group's extra
 * coordinates stand for inputs that do not exist and are dropped when decoding. A reader that
 * infers in = 8 * groups from the codes sees 176 there.
 *
 * @param codes     [rows, groups, numCodebooks], each in [0, 2^codebookBits)
 * @param codebooks [numCodebooks, 2^codebookBits, 8]; fp16 values
 * @param scales    [rows]; fp16 values
 * @param inGroup   inputs per group (AQLM's in_group_size): 8, which casp writes, or 16, which some
 *                  published checkpoints use (codebooks [M, 2^B, 1, 16])
 */
public record AqlmTensors(int rows, int groups, int numCodebooks, int codebookBits, int[] codes, float[] codebooks,
                          float[] scales, int inGroup) {
    /** Tensor name suffixes (after the prefix and a dot). */
    public static final String CODES = "codes", CODEBOOKS = "codebooks", SCALES = "scales", CODEBOOKS_LAYER = "codebooks_layer";
    private static final java.util.regex.Pattern LAYER = java.util.regex.Pattern.compile("(^|\\.)layers\\.(\\d+)\\.");
    public static final int IN_GROUP = 8;

    /** Groups of {@link #IN_GROUP} inputs. */
    public AqlmTensors(int rows, int groups, int numCodebooks, int codebookBits, int[] codes, float[] codebooks, float[] scales) {
        this(rows, groups, numCodebooks, codebookBits, codes, codebooks, scales, IN_GROUP);
    }

    public AqlmTensors {
        if (numCodebooks < 1 || codebookBits < 1 || codebookBits > 16)
            throw new IllegalArgumentException("need >= 1 codebook of 1..16 bits, got " + numCodebooks + "x" + codebookBits);
        if (inGroup != 8 && inGroup != 16) throw new IllegalArgumentException("in_group_size " + inGroup + ": supported are 8 and 16");
        if (codes.length != (long) rows * groups * numCodebooks || codebooks.length != (long) numCodebooks * (1 << codebookBits) * inGroup
                || scales.length != rows)
            throw new IllegalArgumentException("inconsistent AQLM arrays for " + rows + " rows, " + groups + " groups, "
                    + numCodebooks + "x" + codebookBits);
    }

    /** Entries per codebook, 2^codebookBits. */
    public int codebookSize() {
        return 1 << codebookBits;
    }

    /** The integer type of the codes tensor: I8 up to 8 bits per codebook, I16 above. */
    public static DType codeType(int codebookBits) {
        return codebookBits <= 8 ? DType.I8 : DType.I16;
    }

    /** Adds the three tensors under prefix to w (codebooks and scales as F16: they hold fp16 values). */
    public void write(SafeTensorsWriter w, String prefix) {
        writeCodes(w, prefix);
        w.addF16(prefix + "." + CODEBOOKS, new long[]{numCodebooks, codebookSize(), 1, inGroup}, codebooks);
        w.addF16(prefix + "." + SCALES, new long[]{rows, 1, 1, 1}, scales);
    }

    private void writeCodes(SafeTensorsWriter w, String prefix) {
        DType ct = codeType(codebookBits);
        int k = codebookSize();
        int[] c = codes;
        w.add(prefix + "." + CODES, ct, new long[]{rows, groups, numCodebooks}, out -> {
            ByteBuffer b = ByteBuffer.allocate(c.length * ct.bytes()).order(ByteOrder.LITTLE_ENDIAN);
            for (int v : c) {
                int s = v >= k / 2 ? v - k : v; // AQLM's signed storage
                if (ct == DType.I8) b.put((byte) s);
                else b.putShort((short) s);
            }
            b.flip();
            SafeTensorsWriter.writeAll(out, b);
        });
    }

    /**
     * Adds codes, scales and the index of the decoder layer whose same-named linear stores these
     * codebooks (instead of the codebooks themselves).
     */
    public void writeSharing(SafeTensorsWriter w, String prefix, int codebooksLayer) {
        if (codebooksLayer < 0) throw new IllegalArgumentException("codebook layer must be >= 0, got " + codebooksLayer);
        writeCodes(w, prefix);
        w.addF16(prefix + "." + SCALES, new long[]{rows, 1, 1, 1}, scales);
        w.addInts(prefix + "." + CODEBOOKS_LAYER, new long[]{1}, new int[]{codebooksLayer});
    }

    /** prefix with its decoder layer index ("layers.N.") replaced by layer; throws when prefix names no layer. */
    public static String ownerPrefix(String prefix, int layer) {
        java.util.regex.Matcher m = LAYER.matcher(prefix);
        int start = -1, end = -1;
        while (m.find()) {
            start = m.start(2);
            end = m.end(2);
        }
        if (start < 0) throw new IllegalArgumentException("'" + prefix + "' names no decoder layer (layers.N.) to share codebooks with");
        return prefix.substring(0, start) + layer + prefix.substring(end);
    }

    /**
     * The name of the codebooks tensor of the layer under prefix in a store: its own, or for a layer
     * sharing another's (a {@link #CODEBOOKS_LAYER} tensor) that layer's; a {@link BadInputException}
     * when neither is there.
     */
    public static String codebooksName(WeightStore w, String prefix) {
        String own = prefix + "." + CODEBOOKS, ref = prefix + "." + CODEBOOKS_LAYER;
        if (w.has(own) || !w.has(ref)) return own;
        TensorInfo ri = w.info(ref);
        if (ri.dtype() != DType.I32 || !Arrays.equals(ri.shape(), new long[]{1}))
            throw new BadInputException(w.file(ref).path() + ": tensor '" + ref + "' is " + ri.dtype() + " " + Arrays.toString(ri.shape())
                    + ", expected I32 [1]");
        int layer = w.ints(ref)[0];
        String owner;
        try {
            owner = ownerPrefix(prefix, layer) + "." + CODEBOOKS;
        } catch (IllegalArgumentException e) {
            throw new BadInputException(w.file(ref).path() + ": tensor '" + ref + "': " + e.getMessage());
        }
        if (layer < 0 || owner.equals(own) || !w.has(owner))
            throw new BadInputException(w.file(ref).path() + ": tensor '" + ref + "' refers to layer " + layer + ", but there is no tensor '"
                    + owner + "' holding codebooks");
        return owner;
    }

    /** Whether a store holds an AQLM layer under prefix (its codes tensor). */
    public static boolean present(WeightStore w, String prefix) {
        return w.has(prefix + "." + CODES);
    }

    /**
     * Reads the layer under prefix from a model folder's tensors, checking every shape and dtype
     * against rows (out features), in (in features) and the codebook configuration; a mismatch
     * is a {@link BadInputException} naming the tensor.
     */
    public static AqlmTensors read(WeightStore w, String prefix, int rows, int in, int numCodebooks, int codebookBits) {
        return read(w, prefix, rows, in, numCodebooks, codebookBits, IN_GROUP);
    }

    /** As {@link #read(WeightStore, String, int, int, int, int)} with inGroup inputs per group. */
    public static AqlmTensors read(WeightStore w, String prefix, int rows, int in, int numCodebooks, int codebookBits, int inGroup) {
        String cbName = codebooksName(w, prefix);
        return read(w.file(prefix + "." + CODES), w.file(cbName), w.file(prefix + "." + SCALES),
                prefix, cbName, rows, in, numCodebooks, codebookBits, inGroup);
    }

    /** {@link #read(WeightStore, String, int, int, int, int)} from one safetensors file (a checkpoint). */
    public static AqlmTensors read(SafeTensorsFile f, String prefix, int rows, int in, int numCodebooks, int codebookBits) {
        return read(f, f, f, prefix, prefix + "." + CODEBOOKS, rows, in, numCodebooks, codebookBits, IN_GROUP);
    }

    private static AqlmTensors read(SafeTensorsFile fc, SafeTensorsFile fb, SafeTensorsFile fs, String prefix, String cbName, int rows,
                                    int in, int numCodebooks, int codebookBits, int inGroup) {
        if (numCodebooks < 1 || codebookBits < 1 || codebookBits > 16)
            throw new BadInputException(fc.path() + ": AQLM layer '" + prefix + "' with " + numCodebooks + " codebooks of "
                    + codebookBits + " bits: supported are >= 1 codebooks of 1..16 bits");
        int groups = (in + inGroup - 1) / inGroup, k = 1 << codebookBits;
        TensorInfo ci = fc.info(prefix + "." + CODES);
        DType ct = codeType(codebookBits);
        check(fc, ci, ct, new long[]{rows, groups, numCodebooks});
        TensorInfo bi = fb.info(cbName);
        if (!bi.dtype().isFloatingPoint()) check(fb, bi, DType.F16, new long[]{numCodebooks, k, 1, inGroup});
        check(fb, bi, bi.dtype(), new long[]{numCodebooks, k, 1, inGroup});
        TensorInfo si = fs.info(prefix + "." + SCALES);
        if (!si.dtype().isFloatingPoint()) check(fs, si, DType.F16, new long[]{rows, 1, 1, 1});
        check(fs, si, si.dtype(), new long[]{rows, 1, 1, 1});

        byte[] raw = fc.readBytes(ci.name());
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        int[] codes = new int[rows * groups * numCodebooks];
        for (int i = 0; i < codes.length; i++) {
            int s = ct == DType.I8 ? b.get(i) : b.getShort(2 * i);
            // signed (AQLM's storage, [-k/2, k/2)) or unsigned [0, k): anything else indexes past the codebook
            if (s < -k / 2 || s >= k)
                throw new BadInputException(fc.path() + ": tensor '" + ci.name() + "' holds code " + s + " at element " + i
                        + ", outside the " + k + "-entry codebook");
            codes[i] = Math.floorMod(s, k); // AQLM's unpack_int_data
        }
        float[] codebooks = fb.readFloats(bi.name());
        float[] scales = fs.readFloats(si.name());
        for (float v : codebooks) if (!Float.isFinite(v)) throw new BadInputException(fb.path() + ": tensor '" + bi.name() + "' has a non-finite value");
        for (float v : scales) if (!Float.isFinite(v)) throw new BadInputException(fs.path() + ": tensor '" + si.name() + "' has a non-finite value");
        return new AqlmTensors(rows, groups, numCodebooks, codebookBits, codes, codebooks, scales, inGroup);
    }

    private static void check(SafeTensorsFile f, TensorInfo t, DType type, long[] shape) {
        if (t.dtype() != type || !Arrays.equals(t.shape(), shape))
            throw new BadInputException(f.path() + ": tensor '" + t.name() + "' is " + t.dtype() + " " + Arrays.toString(t.shape())
                    + ", expected " + type + " " + Arrays.toString(shape));
    }
}
