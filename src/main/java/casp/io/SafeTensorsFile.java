package casp.io;

import casp.tensor.DType;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ShortBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file, validated on open. Tensors are either read with positional reads of at most
 * {@link #READ_WINDOW_BYTES} at a time into the caller's arrays (never through a memory map: a
 * mapped page stays resident until the garbage collector unmaps its buffer, so copying a 14 GB
 * model through maps could hold two copies at once), or, for the 16-bit weights a model runs on,
 * memory-mapped and used in place ({@link #mapHalfs}).
 *
 * <p>Format: 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
 * Every malformed case (truncated file, header past the end, bad JSON, unknown dtype, offsets that
 * overlap, leave gaps, run past the data or disagree with shape x dtype) is a
 * {@link BadInputException} naming the file and tensor; nothing is read outside the file.
 */
public final class SafeTensorsFile {
    /** Largest single read. */
    static final long READ_WINDOW_BYTES = 16L << 20;
    /** The window actually used; tests lower it to exercise reads that span several windows. */
    static long readWindowBytes = READ_WINDOW_BYTES;
    /** Headers beyond this are surely corrupt (HF's own limit is 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;
    /** Duplicate keys are refused: JSON's usual "last one wins" would hide a tensor. */
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Path path;
    private final long dataStart;
    private final long fileSize;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafeTensorsFile(Path path, long dataStart, long fileSize,
                            Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.dataStart = dataStart;
        this.fileSize = fileSize;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Opens and validates a safetensors file. */
    public static SafeTensorsFile open(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw bad(path, "file is truncated (" + size + " bytes, less than the 8-byte header length)");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0, path);
            long headerLen = lenBuf.getLong(0);
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES)
                throw bad(path, "header length " + headerLen + " is not plausible (file has " + size + " bytes)");
            if (8 + headerLen > size)
                throw bad(path, "header length " + headerLen + " points past the end of the file (" + size + " bytes): truncated file?");
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(ch, header, 8, path);
            String json = new String(header.array(), StandardCharsets.UTF_8);
            return parse(path, json, 8 + headerLen, size);
        } catch (NoSuchFileException e) {
            throw new BadInputException(path + ": no such file");
        } catch (IOException e) {
            throw new BadInputException(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos, Path path) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) throw bad(path, "unexpected end of file");
        }
    }

    private static SafeTensorsFile parse(Path path, String json, long dataStart, long fileSize) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            String m = e.getOriginalMessage();
            if (m != null && m.startsWith("Duplicate field"))
                throw bad(path, "the header names a tensor twice: " + m.substring("Duplicate field ".length()));
            throw bad(path, "header is not valid JSON: " + m);
        }
        if (root == null || !root.isObject()) throw bad(path, "header is not a JSON object");
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> list = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw bad(path, "__metadata__ is not an object");
                v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            list.add(parseEntry(path, name, v));
        }
        long dataSize = fileSize - dataStart;
        // Offsets must tile [0, dataSize) exactly: sorted, no overlap, no gap, nothing past the end.
        List<TensorInfo> sorted = new ArrayList<>(list);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = 0;
        for (TensorInfo t : sorted) {
            if (t.begin() < expected) throw bad(path, "tensor '" + t.name() + "' overlaps the previous tensor (offset " + t.begin() + " < " + expected + ")");
            if (t.begin() > expected) throw bad(path, "gap in the data before tensor '" + t.name() + "' (offset " + t.begin() + ", expected " + expected + ")");
            if (t.end() > dataSize) throw bad(path, "tensor '" + t.name() + "' runs past the end of the data (" + t.end() + " > " + dataSize + " bytes): truncated file?");
            expected = t.end();
        }
        if (expected != dataSize)
            throw bad(path, "data section has " + dataSize + " bytes but the tensors cover " + expected + " (trailing bytes)");
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : list) byName.put(t.name(), t);
        return new SafeTensorsFile(path, dataStart, fileSize, Collections.unmodifiableMap(byName),
                Collections.unmodifiableMap(metadata));
    }

    private static TensorInfo parseEntry(Path path, String name, JsonNode v) {
        String where = "tensor '" + name + "'";
        if (!v.isObject()) throw bad(path, where + ": entry is not an object");
        JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw bad(path, where + ": missing dtype");
        DType dtype = DType.fromSafetensors(dt.asText());
        if (dtype == null) throw bad(path, where + ": unknown dtype '" + dt.asText() + "'");
        if (sh == null || !sh.isArray()) throw bad(path, where + ": missing shape");
        long[] shape = new long[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) throw bad(path, where + ": bad shape " + sh);
            shape[i] = d.asLong();
            numel = SizeMath.multiply(numel, shape[i], path + ": " + where + ": shape " + sh + " has more elements than any file can hold");
        }
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber())
            throw bad(path, where + ": data_offsets must be [begin, end]");
        long begin = off.get(0).asLong(), end = off.get(1).asLong();
        if (begin < 0 || end < begin) throw bad(path, where + ": bad data_offsets [" + begin + ", " + end + "]");
        long bytes = SizeMath.multiply(numel, dtype.bytes(), path + ": " + where + ": shape " + sh + " x " + dtype
                + " has more bytes than any file can hold");
        if (end - begin != bytes)
            throw bad(path, where + ": data_offsets span " + (end - begin) + " bytes but shape " + sh + " x " + dtype
                    + " needs " + bytes);
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static BadInputException bad(Path path, String msg) {
        return new BadInputException(path + ": " + msg);
    }

    public Path path() {
        return path;
    }

    /** Tensors in header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new BadInputException(path + ": no tensor named '" + name + "'");
        return t;
    }

    /** Reads a floating-point tensor (F32, F16, BF16 or F64) converted to float32. */
    public float[] readFloats(String name) {
        TensorInfo t = info(name);
        float[] out = new float[arrayLength(t)];
        readFloats(t, out, 0);
        long bad = casp.kernel.Finite.firstNonFinite(out, out.length);
        if (bad >= 0) throw nonFinite(t, bad, out[(int) bad]);
        return out;
    }

    /** Reads a floating-point tensor into dst[off ..]. */
    public void readFloats(TensorInfo t, float[] dst, int off) {
        int esz = t.dtype().bytes();
        forEachChunk(t, (buf, firstElem) -> {
            int n = buf.remaining() / esz;
            int o = off + (int) firstElem;
            switch (t.dtype()) {
                case F32 -> buf.asFloatBuffer().get(dst, o, n);
                case F64 -> { for (int i = 0; i < n; i++) dst[o + i] = (float) buf.getDouble(i * 8); }
                case F16 -> { for (int i = 0; i < n; i++) dst[o + i] = DType.f16ToFloat(buf.getShort(i * 2)); }
                case BF16 -> { for (int i = 0; i < n; i++) dst[o + i] = DType.bf16ToFloat(buf.getShort(i * 2)); }
                default -> throw new BadInputException(path + ": tensor '" + t.name() + "' has dtype " + t.dtype() + ", expected a floating-point type");
            }
        });
    }

    /** Reads the raw 16-bit values of an F16 or BF16 tensor (no conversion, half the memory of floats). */
    public short[] readHalfs(String name) {
        TensorInfo t = info(name);
        if (t.dtype() != DType.F16 && t.dtype() != DType.BF16) {
            throw new BadInputException(path + ": tensor '" + name + "' has dtype " + t.dtype() + ", expected F16 or BF16");
        }
        short[] out = new short[arrayLength(t)];
        forEachChunk(t, (buf, first) -> buf.asShortBuffer().get(out, (int) first, buf.remaining() / 2));
        boolean bf16 = t.dtype() == DType.BF16;
        long bad = casp.kernel.Finite.firstNonFinite(out, out.length, bf16);
        if (bad >= 0) throw nonFinite(t, bad, bf16 ? DType.bf16ToFloat(out[(int) bad]) : DType.f16ToFloat(out[(int) bad]));
        return out;
    }

    /**
     * The 16-bit values of an F16 or BF16 tensor as little-endian bytes, memory-mapped read-only and used in place: nothing
     * is copied to the heap, the pages are read from the file on first use and the kernel may drop
     * them again under memory pressure. Checked for NaN and infinity like {@link #readHalfs} (one
     * pass over the values). A tensor larger than one mapping (2 GiB) is read into the heap instead.
     */
    public ByteBuffer mapHalfs(String name) {
        TensorInfo t = info(name);
        if (t.dtype() != DType.F16 && t.dtype() != DType.BF16) {
            throw new BadInputException(path + ": tensor '" + name + "' has dtype " + t.dtype() + ", expected F16 or BF16");
        }
        if (t.byteSize() > Integer.MAX_VALUE) {
            short[] values = readHalfs(name);
            ByteBuffer bytes = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asShortBuffer().put(values);
            return bytes;
        }
        ByteBuffer bytes;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            if (ch.size() != fileSize) throw bad(path, "file changed size while open");
            bytes = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + t.begin(), t.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new BadInputException(path + ": cannot map tensor '" + t.name() + "': " + e.getMessage(), e);
        }
        boolean bf16 = t.dtype() == DType.BF16;
        ShortBuffer values = bytes.asShortBuffer();
        long bad = casp.kernel.Finite.firstNonFinite(values, bf16);
        if (bad >= 0) {
            short h = values.get((int) bad);
            throw nonFinite(t, bad, bf16 ? DType.bf16ToFloat(h) : DType.f16ToFloat(h));
        }
        return bytes;
    }

    /** Reads an I32 tensor. */
    public int[] readInts(String name) {
        TensorInfo t = info(name);
        if (t.dtype() != DType.I32) throw new BadInputException(path + ": tensor '" + name + "' has dtype " + t.dtype() + ", expected I32");
        int[] out = new int[arrayLength(t)];
        forEachChunk(t, (buf, first) -> buf.asIntBuffer().get(out, (int) first, buf.remaining() / 4));
        return out;
    }

    /** Reads the raw little-endian bytes of a tensor. */
    public byte[] readBytes(String name) {
        TensorInfo t = info(name);
        if (t.byteSize() > Integer.MAX_VALUE - 8)
            throw bad(path, "tensor '" + name + "' has " + t.byteSize() + " bytes, more than one Java array holds");
        byte[] out = new byte[(int) t.byteSize()];
        forEachChunk(t, (buf, first) -> buf.get(out, (int) (first * t.dtype().bytes()), buf.remaining()));
        return out;
    }

    /** The element count of a tensor read into one Java array; larger tensors are refused by name. */
    private int arrayLength(TensorInfo t) {
        if (t.numel() > Integer.MAX_VALUE - 8)
            throw bad(path, "tensor '" + t.name() + "' has " + t.numel() + " elements, more than one Java array holds");
        return (int) t.numel();
    }

    private BadInputException nonFinite(TensorInfo t, long index, float value) {
        return bad(path, "tensor '" + t.name() + "' holds " + value + " at element " + index
                + ": the weights are damaged (NaN or infinite values cannot come from training)");
    }

    private interface ChunkReader {
        void accept(ByteBuffer littleEndianChunk, long firstElement);
    }

    /** Reads the tensor's bytes in windows of readWindowBytes, each a whole number of elements. */
    private void forEachChunk(TensorInfo t, ChunkReader reader) {
        long esz = t.dtype().bytes();
        long chunk = Math.max(esz, readWindowBytes / esz * esz);
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(chunk, Math.max(esz, t.byteSize()))).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            if (ch.size() != fileSize) throw bad(path, "file changed size while open");
            for (long pos = 0; pos < t.byteSize(); pos += chunk) {
                long len = Math.min(chunk, t.byteSize() - pos);
                buf.clear().limit((int) len);
                readFully(ch, buf, dataStart + t.begin() + pos, path);
                buf.flip();
                reader.accept(buf, pos / esz);
            }
        } catch (IOException e) {
            throw new BadInputException(path + ": cannot read tensor '" + t.name() + "': " + e.getMessage(), e);
        }
    }

    /** Copies the raw bytes of a tensor to a channel (used to carry untouched tensors into an output). */
    public void copyTo(TensorInfo t, java.nio.channels.WritableByteChannel out) throws IOException {
        forEachChunkIO(t, out);
    }

    private void forEachChunkIO(TensorInfo t, java.nio.channels.WritableByteChannel out) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long pos = dataStart + t.begin(), end = dataStart + t.end();
            while (pos < end) pos += ch.transferTo(pos, end - pos, out);
        }
    }
}
