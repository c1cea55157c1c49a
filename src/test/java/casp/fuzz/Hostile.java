package casp.fuzz;

import casp.cli.CliRunner;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Builds hostile inputs (edited headers, configs, images) and checks the CLI's contract on them. */
final class Hostile {
    private Hostile() {}

    static final ObjectMapper JSON = new ObjectMapper();

    /** A writable copy of a model folder's files. */
    static Path copyModel(Path src, Path dst) {
        try {
            Files.createDirectories(dst);
            try (Stream<Path> s = Files.list(src)) {
                for (Path f : s.filter(Files::isRegularFile).toList()) Files.copy(f, dst.resolve(f.getFileName()));
            }
            return dst;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The header JSON of a safetensors file. */
    static ObjectNode header(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        return (ObjectNode) JSON.readTree(new String(b, 8, (int) n, StandardCharsets.UTF_8));
    }

    /** Byte offset of the data section (8 + header length). */
    static long dataStart(Path file) throws IOException {
        byte[] b = new byte[8];
        try (var in = Files.newInputStream(file)) {
            if (in.readNBytes(b, 0, 8) != 8) throw new IOException("short file");
        }
        return 8 + ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    /** Replaces the header with the given text, keeping the data bytes. */
    static void replaceHeader(Path file, String headerJson) throws IOException {
        byte[] b = Files.readAllBytes(file);
        long start = dataStart(file);
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + (int) (b.length - start)).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length).put(h).put(b, (int) start, (int) (b.length - start));
        Files.write(file, out.array());
    }

    /** Edits the header JSON in place. */
    static void editHeader(Path file, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode h = header(file);
        edit.accept(h);
        replaceHeader(file, JSON.writeValueAsString(h));
    }

    /** Overwrites 4 bytes of a tensor's data with a float (little endian). */
    static void putFloat(Path file, String tensor, long element, float value) throws IOException {
        JsonNode t = header(file).get(tensor);
        long at = dataStart(file) + t.get("data_offsets").get(0).asLong() + element * 4;
        byte[] b = Files.readAllBytes(file);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putFloat((int) at, value);
        Files.write(file, b);
    }

    /** Overwrites 2 bytes of a tensor's data (little endian). */
    static void putShort(Path file, String tensor, long element, short value) throws IOException {
        JsonNode t = header(file).get(tensor);
        long at = dataStart(file) + t.get("data_offsets").get(0).asLong() + element * 2;
        byte[] b = Files.readAllBytes(file);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putShort((int) at, value);
        Files.write(file, b);
    }

    /** Edits a JSON object file in place. */
    static void editJson(Path file, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode n = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept(n);
        Files.write(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
    }

    /** A real PNG (gray, w x h) as bytes. */
    static byte[] png(int w, int h, int type) {
        BufferedImage img = new BufferedImage(w, h, type);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (x * 37 + y * 91) * 0x010101);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            ImageIO.write(img, "png", out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** A small PNG whose header claims w x h pixels (IHDR rewritten, CRC fixed): what a decompression bomb's header says. */
    static byte[] pngClaiming(long w, long h) {
        byte[] b = png(2, 2, BufferedImage.TYPE_BYTE_GRAY);
        ByteBuffer bb = ByteBuffer.wrap(b); // big endian, as PNG
        bb.putInt(16, (int) w).putInt(20, (int) h);
        CRC32 crc = new CRC32();
        crc.update(b, 12, 17); // "IHDR" + 13 data bytes
        bb.putInt(29, (int) crc.getValue());
        return b;
    }

    /** A snapshot of every file under root (size and modification time), except those under the excluded paths. */
    static Map<String, String> snapshot(Path root, Path... excluded) {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                boolean skip = false;
                for (Path e : excluded) {
                    String name = e.getFileName().toString();
                    Path parent = e.getParent();
                    // the folder itself, and what a run keeps beside it: NAME.partial, .NAME.lock, .NAME.tmp-*
                    if (p.startsWith(e) || p.startsWith(parent.resolve(name + ".partial"))
                            || p.getParent().equals(parent) && p.getFileName().toString().startsWith("." + name + ".")) skip = true;
                }
                if (!skip) m.put(root.relativize(p).toString(), Files.size(p) + "@" + Files.getLastModifiedTime(p).toMillis());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return m;
    }

    /** Runs the CLI in-process; an exception escaping it (a stack trace in the real launcher) becomes exit -1 with the trace. */
    static CliRunner.Result run(String... args) {
        try {
            return CliRunner.run(args);
        } catch (Throwable t) {
            java.io.StringWriter w = new java.io.StringWriter();
            t.printStackTrace(new java.io.PrintWriter(w));
            return new CliRunner.Result(-1, "", w.toString());
        }
    }

    /**
     * The contract on a refused input: exit 2, one line on stderr starting "casp: error: " (a flag
     * error may add "(see --help)") that names the file or flag (mention), no stack trace.
     */
    static void assertRefused(CliRunner.Result r, String mention) {
        assertNoStackTrace(r);
        assertEquals(2, r.exitCode(), () -> "expected exit 2 naming " + mention + "; got " + r.exitCode() + "\nerr: " + r.err() + "\nout: " + r.out());
        java.util.List<String> lines = r.err().lines().filter(l -> !l.isBlank() && !l.equals("(see --help)")).toList();
        assertEquals(1, lines.size(), () -> "one line: " + r.err());
        assertTrue(lines.get(0).startsWith("casp: error: "), lines.get(0));
        if (mention != null) assertTrue(lines.get(0).contains(mention), () -> "the message names " + mention + ": " + lines.get(0));
    }

    static void assertNoStackTrace(CliRunner.Result r) {
        for (String s : new String[]{r.err(), r.out()}) {
            if (s.contains("\tat ") || s.contains("Exception") || s.contains("java.lang."))
                fail("stack trace or raw exception:\n" + s);
        }
    }
}
