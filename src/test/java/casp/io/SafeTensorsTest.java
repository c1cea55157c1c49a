package casp.io;

import casp.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SafeTensorsTest {
    @TempDir
    Path tmp;

    /** Builds a file from a raw header string and a data section of the given size. */
    private Path raw(String name, String header, int dataBytes, Long headerLenOverride) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(headerLenOverride != null ? headerLenOverride : h.length).put(h);
        Path p = tmp.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private static void assertBad(Path p, String... fragments) {
        BadInputException e = assertThrows(BadInputException.class, () -> SafeTensorsFile.open(p));
        assertTrue(e.getMessage().contains(p.toString()), "message names the file: " + e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message mentions '" + f + "': " + e.getMessage());
    }

    @Test
    void roundTripAllDtypesAndMetadata() throws IOException {
        float[] f = {1f, -2.5f, 3.25f, 0f, 65504f, 1e-7f};
        int[] ints = {1, -2, Integer.MAX_VALUE};
        Path p = tmp.resolve("m.safetensors");
        new SafeTensorsWriter().metadata("format", "pt")
                .addFloats("a.weight", new long[]{2, 3}, f)
                .addF16("h", new long[]{6}, f)
                .addInts("ids", new long[]{3}, ints)
                .addFloats("scalar", new long[]{}, new float[]{7f})
                .write(p);
        long headerLen = ByteBuffer.wrap(Files.readAllBytes(p), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
        SafeTensorsFile s = SafeTensorsFile.open(p);
        assertEquals("pt", s.metadata().get("format"));
        assertArrayEquals(f, s.readFloats("a.weight"));
        assertArrayEquals(new long[]{2, 3}, s.info("a.weight").shape());
        float[] h = s.readFloats("h");
        for (int i = 0; i < f.length; i++) assertEquals(f[i], h[i], Math.abs(f[i]) * 1e-3 + 1e-7, "f16 " + i);
        assertArrayEquals(ints, s.readInts("ids"));
        assertArrayEquals(new float[]{7f}, s.readFloats("scalar"));
        try (var files = Files.list(tmp)) {
            assertEquals(1, files.count(), "no temporary file left behind");
        }
    }

    @Test
    void truncatedFile() throws IOException {
        Path p = tmp.resolve("short.safetensors");
        Files.write(p, new byte[]{1, 2, 3});
        assertBad(p, "truncated");
    }

    @Test
    void headerLengthPastEnd() throws IOException {
        assertBad(raw("past.safetensors", "{}", 0, 4096L), "past the end");
    }

    @Test
    void malformedJson() throws IOException {
        assertBad(raw("json.safetensors", "{\"a\": {\"dtype\": ", 0, null), "not valid JSON");
    }

    @Test
    void unknownDtype() throws IOException {
        assertBad(raw("dt.safetensors", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, null), "'w'", "unknown dtype");
    }

    @Test
    void overlappingOffsets() throws IOException {
        assertBad(raw("ov.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, null), "'b'", "overlaps");
    }

    @Test
    void gapBetweenTensors() throws IOException {
        assertBad(raw("gap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, null), "'b'", "gap");
    }

    @Test
    void offsetsPastData() throws IOException {
        assertBad(raw("pastdata.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, null), "'a'", "past the end");
    }

    @Test
    void offsetsDisagreeWithShape() throws IOException {
        assertBad(raw("shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, null), "'a'", "needs 12");
    }

    @Test
    void trailingBytes() throws IOException {
        assertBad(raw("trail.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, null), "trailing");
    }

    @Test
    void missingShardNamedByIndex() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("sharded"));
        new SafeTensorsWriter().addFloats("a", new long[]{1}, new float[]{1f}).write(dir.resolve("model-00001-of-00002.safetensors"));
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"metadata\":{},\"weight_map\":{"
                + "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
        BadInputException e = assertThrows(BadInputException.class, () -> WeightStore.open(dir));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void shardedStoreReadsAcrossShards() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("ok"));
        new SafeTensorsWriter().addFloats("a", new long[]{2}, new float[]{1f, 2f}).write(dir.resolve("s1.safetensors"));
        new SafeTensorsWriter().addFloats("b", new long[]{1}, new float[]{3f}).write(dir.resolve("s2.safetensors"));
        Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}");
        WeightStore w = WeightStore.open(dir);
        assertArrayEquals(new float[]{1f, 2f}, w.floats("a"));
        assertArrayEquals(new float[]{3f}, w.floats("b"));
    }

    @Test
    void bf16AndF16ReadExactly() throws IOException {
        Path p = tmp.resolve("b.safetensors");
        // bf16's largest finite value and smallest subnormal widen exactly too (infinities are refused at load)
        float[] vals = {1f, -0f, Float.intBitsToFloat(0x7f7f0000), 0.15625f, -3.5f, Float.intBitsToFloat(0x00010000)};
        new SafeTensorsWriter().add("b", DType.BF16, new long[]{vals.length}, out -> {
            ByteBuffer bb = ByteBuffer.allocate(vals.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : vals) bb.putShort(DType.floatToBf16(v));
            bb.flip();
            while (bb.hasRemaining()) out.write(bb);
        }).write(p);
        assertArrayEquals(vals, SafeTensorsFile.open(p).readFloats("b"));
    }

    private static SafeTensorsWriter addBf16(SafeTensorsWriter w, String name, float... vals) {
        return w.add(name, DType.BF16, new long[]{vals.length}, out -> {
            ByteBuffer bb = ByteBuffer.allocate(vals.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : vals) bb.putShort(DType.floatToBf16(v));
            bb.flip();
            while (bb.hasRemaining()) out.write(bb);
        });
    }

    @Test
    void mappedHalfsAreTheValuesInPlace() throws IOException {
        float[] f = new float[1001];
        for (int i = 0; i < f.length; i++) f[i] = (i - 500) * 0.03125f;
        Path p = tmp.resolve("m.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter().addF16("pad", new long[]{3}, new float[]{1, 2, 3}).addF16("h", new long[]{f.length}, f);
        addBf16(w, "b", f).write(p);
        SafeTensorsFile s = SafeTensorsFile.open(p);
        for (String name : new String[] {"h", "b", "pad"}) {
            short[] read = s.readHalfs(name);
            java.nio.ShortBuffer mapped = s.mapHalfs(name).asShortBuffer();
            assertFalse(mapped.hasArray(), name + ": mapped, not copied to the heap");
            assertEquals(read.length, mapped.capacity(), name);
            for (int i = 0; i < read.length; i++) assertEquals(read[i], mapped.get(i), name + "[" + i + "]");
        }
        BadInputException e = assertThrows(BadInputException.class, () -> s.mapHalfs("nope"));
        assertTrue(e.getMessage().contains("nope"), e.getMessage());
    }

    @Test
    void mappedHalfsRefuseDamagedValues() throws IOException {
        Path p = tmp.resolve("nan.safetensors");
        addBf16(new SafeTensorsWriter(), "w", 1f, 2f, Float.NaN, 4f).write(p);
        BadInputException e = assertThrows(BadInputException.class, () -> SafeTensorsFile.open(p).mapHalfs("w"));
        assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("'w'") && e.getMessage().contains("element 2"),
                e.getMessage());
    }

    @Test
    void readsSpanningSeveralReadWindows() throws IOException {
        float[] f = new float[1003];
        for (int i = 0; i < f.length; i++) f[i] = i * 0.5f - 7;
        Path p = tmp.resolve("w.safetensors");
        new SafeTensorsWriter().addFloats("pad", new long[]{3}, new float[]{1, 2, 3}).addF16("x", new long[]{f.length}, f)
                .addFloats("y", new long[]{f.length}, f).write(p);
        long saved = SafeTensorsFile.readWindowBytes;
        try {
            SafeTensorsFile.readWindowBytes = 64; // many windows, none aligned with the tensor starts
            SafeTensorsFile s = SafeTensorsFile.open(p);
            assertArrayEquals(f, s.readFloats("y"));
            assertArrayEquals(f, s.readFloats("x"));
        } finally {
            SafeTensorsFile.readWindowBytes = saved;
        }
    }

    @Test
    void fileLargerThan2GiB() throws IOException {
        // A sparse file: a 2 GiB + 16 byte U8 tensor of zeros, then a small tensor beyond the 2 GiB mark.
        long big = (1L << 31) + 16;
        String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + big + "],\"data_offsets\":[0," + big + "]},"
                + "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + big + "," + (big + 8) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path p = tmp.resolve("big.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.SPARSE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h);
            head.flip();
            ch.write(head);
            ByteBuffer tail = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f);
            tail.flip();
            ch.write(tail, 8 + h.length + big);
        }
        SafeTensorsFile s = SafeTensorsFile.open(p);
        assertEquals(big, s.info("big").byteSize());
        assertArrayEquals(new float[]{1.5f, -2f}, s.readFloats("tail"));
    }
}
