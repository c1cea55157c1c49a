package casp.io;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The GPT-2 byte-to-unicode alphabet used by byte-level BPE: every byte gets one printable
 * character, so a vocabulary of strings can hold arbitrary bytes. Printable Latin-1 bytes
 * ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes map, in byte order,
 * to U+0100, U+0101, ... (so ' ' becomes 'Ġ' and '\n' becomes 'Ċ').
 */
final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Inverse map, indexed by char; -1 where a char is not in the alphabet. */
    private static final short[] CHAR_TO_BYTE = new short[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevel() {
    }

    /** The alphabet character that stands for byte b (0..255). */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a character stands for, or -1 if the character is not in the alphabet. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** UTF-8 bytes of s, each replaced by its alphabet character. */
    static String encode(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }

    /**
     * Appends the bytes a token stands for. A token with a character outside the alphabet (an
     * added token such as a non-ASCII special token) contributes its own UTF-8 bytes instead,
     * as Hugging Face's ByteLevel decoder does.
     */
    static void appendBytes(String token, ByteArrayOutputStream out) {
        for (int i = 0; i < token.length(); i++) {
            if (byteOf(token.charAt(i)) < 0) {
                out.writeBytes(token.getBytes(StandardCharsets.UTF_8));
                return;
            }
        }
        for (int i = 0; i < token.length(); i++) out.write(byteOf(token.charAt(i)));
    }
}
