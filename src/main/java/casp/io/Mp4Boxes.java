package casp.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Set;

/**
 * Structural checks of an MP4 / QuickTime file, made before jcodec parses it. jcodec allocates
 * whatever a box declares (a moov body, a sample table of count entries) before reading it, so a
 * truncated file or a few crafted bytes could ask for gigabytes; here every box must lie inside
 * its parent and the file, and every table's entry count must fit the bytes of its box.
 */
final class Mp4Boxes {
    private Mp4Boxes() {}

    /** Boxes an MP4 or QuickTime file may start with. */
    private static final Set<String> FIRST_BOXES = Set.of("ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid", "pdin", "styp");

    /** Boxes whose body is a list of child boxes, on the way from moov to the sample tables. */
    private static final Set<String> CONTAINERS = Set.of("moov", "trak", "mdia", "minf", "stbl", "edts");

    /** Checks the top-level boxes and the moov box's tree (read into memory once, within a bound). */
    static void check(Path file, FileChannel ch) throws IOException {
        long fileSize = ch.size();
        long pos = 0, moovAt = -1, moovSize = 0, moovHeader = 0;
        ByteBuffer head = ByteBuffer.allocate(16);
        while (pos < fileSize) {
            if (fileSize - pos < 8) throw bad(file, "truncated: the box header at byte " + pos + " is cut off after " + (fileSize - pos) + " bytes");
            head.clear().limit(16);
            ch.read(head, pos);
            head.flip();
            Header h = Header.read(file, head, fileSize - pos, "at byte " + pos);
            long size = h.size;
            String type = h.type;
            int headerLen = h.length;
            if (pos == 0 && !FIRST_BOXES.contains(type))
                throw bad(file, "not an MP4 / QuickTime file (it starts with neither an 'ftyp' nor another top-level box)");
            if (size < headerLen) throw bad(file, "box '" + type + "' at byte " + pos + " declares an invalid size " + size);
            if (size > fileSize - pos)
                throw bad(file, "truncated: box '" + type + "' at byte " + pos + " declares " + size + " bytes, the file ends "
                        + (fileSize - pos) + " bytes later");
            if (type.equals("moof")) throw bad(file, "fragmented MP4 (moof boxes) is not supported; remux it without fragments");
            if (type.equals("moov")) {
                moovAt = pos;
                moovSize = size;
                moovHeader = headerLen;
            }
            pos += size;
        }
        if (moovAt < 0) throw bad(file, "no moov box: not an MP4 / QuickTime file, or one cut off before its index");
        long body = moovSize - moovHeader;
        long cap = Math.min(Integer.MAX_VALUE - 16, Runtime.getRuntime().maxMemory() / 8);
        if (body > cap) throw bad(file, "the moov box declares " + body + " bytes, over the limit of " + cap + " bytes");
        ByteBuffer moov = ByteBuffer.allocate((int) body);
        while (moov.hasRemaining()) {
            if (ch.read(moov, moovAt + moovHeader + moov.position()) < 0) throw bad(file, "truncated inside the moov box");
        }
        moov.flip();
        checkChildren(file, "moov", moov, fileSize);
    }

    /** Every child box of a container body lies inside it; containers and sample tables are checked in turn. */
    private static void checkChildren(Path file, String parent, ByteBuffer body, long fileSize) {
        while (body.hasRemaining()) {
            if (body.remaining() < 8) throw bad(file, "box '" + parent + "' ends inside a child box header");
            int start = body.position();
            Header h = Header.read(file, body, body.limit() - start, "in '" + parent + "'");
            long size = h.size;
            String type = h.type;
            int headerLen = h.length;
            if (size < headerLen || size > body.limit() - start)
                throw bad(file, "box '" + type + "' in '" + parent + "' declares " + size + " bytes, its parent has "
                        + (body.limit() - start) + " left");
            ByteBuffer child = body.duplicate();
            child.position(start + headerLen).limit((int) (start + size));
            if (CONTAINERS.contains(type)) checkChildren(file, type, child.slice(), fileSize);
            else checkTable(file, type, child.slice(), fileSize);
            body.position((int) (start + size));
        }
    }

    /** A sample table's declared entry count fits its box; sample sizes fit the file. */
    private static void checkTable(Path file, String type, ByteBuffer b, long fileSize) {
        int entryBytes;
        switch (type) {
            case "stco", "stss", "stps" -> entryBytes = 4;
            case "co64", "stts", "ctts" -> entryBytes = 8;
            case "stsc" -> entryBytes = 12;
            case "elst" -> entryBytes = b.remaining() > 0 && b.get(0) == 1 ? 20 : 12;
            case "stsz" -> {
                checkSampleSizes(file, b, fileSize);
                return;
            }
            default -> {
                return;
            }
        }
        if (b.remaining() < 8) throw bad(file, "box '" + type + "' is too short (" + b.remaining() + " bytes)");
        long count = b.getInt(4) & 0xFFFFFFFFL;
        if (count * entryBytes > b.remaining() - 8)
            throw bad(file, "box '" + type + "' declares " + count + " entries in " + (b.remaining() - 8) + " bytes");
    }

    private static void checkSampleSizes(Path file, ByteBuffer b, long fileSize) {
        if (b.remaining() < 12) throw bad(file, "box 'stsz' is too short (" + b.remaining() + " bytes)");
        long sampleSize = b.getInt(4) & 0xFFFFFFFFL, count = b.getInt(8) & 0xFFFFFFFFL;
        if (sampleSize != 0) {
            if (sampleSize * count > fileSize)
                throw bad(file, "box 'stsz' declares " + count + " samples of " + sampleSize + " bytes in a file of " + fileSize + " bytes");
            return;
        }
        if (count * 4 > b.remaining() - 12)
            throw bad(file, "box 'stsz' declares " + count + " entries in " + (b.remaining() - 12) + " bytes");
        for (int i = 0; i < count; i++) {
            long s = b.getInt(12 + 4 * i) & 0xFFFFFFFFL;
            if (s > fileSize) throw bad(file, "sample " + i + " declares " + s + " bytes in a file of " + fileSize + " bytes");
        }
    }

    /**
     * A box header read from b at its position: size 1 means a 64-bit size follows, size 0 "to
     * the end" (available bytes: from the box's start to the end of its parent or the file).
     */
    private record Header(long size, String type, int length) {
        static Header read(Path file, ByteBuffer b, long available, String where) {
            long size = b.getInt() & 0xFFFFFFFFL;
            String type = fourcc(b.getInt());
            if (size == 0) return new Header(available, type, 8);
            if (size != 1) return new Header(size, type, 8);
            if (b.remaining() < 8) throw bad(file, "truncated: box '" + type + "' " + where + " has no 64-bit size");
            return new Header(b.getLong(), type, 16);
        }
    }

    private static String fourcc(int v) {
        char[] c = new char[4];
        for (int i = 0; i < 4; i++) {
            int ch = (v >>> (24 - 8 * i)) & 0xFF;
            c[i] = ch >= 32 && ch < 127 ? (char) ch : '?';
        }
        return new String(c);
    }

    private static BadInputException bad(Path file, String why) {
        return new BadInputException(file + ": " + why);
    }
}
