package casp.io;

import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file: header padded with spaces to a multiple of 8 bytes, __metadata__
 * kept, tensors in the order added. The file is written under a temporary name in the same
 * folder and renamed when complete, so a crash never leaves a half-written file under the real name.
 * Tensor data may be supplied lazily (e.g. copied from the source model) to keep memory small.
 */
public final class SafeTensorsWriter {
    /** Writes exactly byteSize bytes of a tensor to the channel. */
    public interface DataSource {
        void writeTo(WritableByteChannel out) throws IOException;
    }

    private record Entry(String name, DType dtype, long[] shape, long bytes, DataSource source) {}

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafeTensorsWriter add(String name, DType dtype, long[] shape, DataSource source) {
        long n = 1;
        for (long d : shape) n *= d;
        for (Entry e : entries) if (e.name.equals(name)) throw new IllegalArgumentException("duplicate tensor " + name);
        entries.add(new Entry(name, dtype, shape.clone(), n * dtype.bytes(), source));
        return this;
    }

    public SafeTensorsWriter addFloats(String name, long[] shape, float[] data) {
        checkLength(name, shape, data.length);
        return add(name, DType.F32, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(data);
            writeAll(out, b);
        });
    }

    /** Stores float values as F16 (round to nearest even). */
    public SafeTensorsWriter addF16(String name, long[] shape, float[] data) {
        checkLength(name, shape, data.length);
        return add(name, DType.F16, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(data.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : data) b.putShort(DType.floatToF16(v));
            b.flip();
            writeAll(out, b);
        });
    }

    public SafeTensorsWriter addInts(String name, long[] shape, int[] data) {
        checkLength(name, shape, data.length);
        return add(name, DType.I32, shape, out -> {
            ByteBuffer b = ByteBuffer.allocate(data.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asIntBuffer().put(data);
            writeAll(out, b);
        });
    }

    /** Carries a tensor of another safetensors file over byte for byte. */
    public SafeTensorsWriter copy(SafeTensorsFile from, String name) {
        TensorInfo t = from.info(name);
        return add(name, t.dtype(), t.shape(), out -> from.copyTo(t, out));
    }

    private static void checkLength(String name, long[] shape, int length) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n != length) throw new IllegalArgumentException(name + ": shape has " + n + " elements, data " + length);
    }

    public static void writeAll(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) out.write(b);
    }

    /** Writes the file atomically: temporary name, then rename over the target. */
    public void write(Path target) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode o = header.putObject(e.name);
            o.put("dtype", e.dtype.safetensorsName());
            ArrayNode s = o.putArray("shape");
            for (long d : e.shape) s.add(d);
            ArrayNode off = o.putArray("data_offsets");
            off.add(offset);
            off.add(offset + e.bytes);
            offset += e.bytes;
        }
        byte[] h = json.writeValueAsBytes(header);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(h);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();

        Path tmp = target.resolveSibling(target.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            writeAll(ch, head);
            for (Entry e : entries) {
                long before = ch.position();
                e.source.writeTo(ch);
                if (ch.position() - before != e.bytes)
                    throw new IllegalStateException("tensor " + e.name + ": wrote " + (ch.position() - before) + " bytes, expected " + e.bytes);
            }
            ch.force(true);
        } catch (IOException | RuntimeException ex) {
            Files.deleteIfExists(tmp);
            throw ex;
        }
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Bytes of tensor data added so far. */
    public long dataBytes() {
        long n = 0;
        for (Entry e : entries) n += e.bytes;
        return n;
    }

    /**
     * Writes the tensors into dir as Hugging Face does for large models: model.safetensors when
     * the data fits in maxShardBytes, else model-0000I-of-0000N.safetensors shards of at most
     * maxShardBytes each (a tensor larger than that gets a shard of its own) and
     * model.safetensors.index.json ("metadata": {"total_size"}, "weight_map": tensor -> shard).
     * Returns the files written.
     */
    public List<Path> writeSharded(Path dir, long maxShardBytes) throws IOException {
        if (dataBytes() <= maxShardBytes) {
            write(dir.resolve("model.safetensors"));
            return List.of(dir.resolve("model.safetensors"));
        }
        List<List<Entry>> shards = new ArrayList<>();
        long size = 0;
        for (Entry e : entries) {
            if (shards.isEmpty() || size > 0 && size + e.bytes > maxShardBytes) {
                shards.add(new ArrayList<>());
                size = 0;
            }
            shards.get(shards.size() - 1).add(e);
            size += e.bytes;
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        index.putObject("metadata").put("total_size", dataBytes());
        ObjectNode map = index.putObject("weight_map");
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            SafeTensorsWriter w = new SafeTensorsWriter();
            w.metadata.putAll(metadata);
            for (Entry e : shards.get(i)) {
                w.entries.add(e);
                map.put(e.name, name);
            }
            w.write(dir.resolve(name));
            files.add(dir.resolve(name));
        }
        Path idx = dir.resolve("model.safetensors.index.json");
        Path tmp = idx.resolveSibling(idx.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.write(tmp, json.writerWithDefaultPrettyPrinter().writeValueAsBytes(index));
        Files.move(tmp, idx, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        files.add(idx);
        return files;
    }
}
