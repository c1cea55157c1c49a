package casp.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgressTest {
    @Test
    void redirectedOutputPrintsOneLinePerTenth() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (Progress p = new Progress("ppl", 200, "tok", new PrintStream(b, true, StandardCharsets.UTF_8), true, false)) {
            for (int i = 0; i < 200; i++) p.advance(1);
        }
        String[] lines = b.toString(StandardCharsets.UTF_8).split("\n");
        assertEquals(11, lines.length, "0%, 10%, ..., 100%");
        assertTrue(lines[10].contains("100%") && lines[10].contains("200/200 tok") && lines[10].contains(" in "), lines[10]);
        assertTrue(lines[5].contains(" 50%") && lines[5].contains("ETA"), lines[5]);
    }

    @Test
    void terminalRedrawsInPlaceAndEndsWithNewline() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (Progress p = new Progress("x", 3, "it", new PrintStream(b, true, StandardCharsets.UTF_8), true, true)) {
            p.set(1);
            p.set(3);
        }
        String s = b.toString(StandardCharsets.UTF_8);
        assertTrue(s.startsWith("\rx ["), s);
        assertTrue(s.endsWith("\n"), s);
        assertEquals(1, s.split("\n").length);
    }

    @Test
    void disabledPrintsNothing() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (Progress p = new Progress("x", 3, "it", new PrintStream(b), false, true)) {
            p.set(3);
        }
        assertEquals(0, b.size());
    }

    @Test
    void timeFormat() {
        assertEquals("0:05", Progress.time(5));
        assertEquals("2:03", Progress.time(123));
        assertEquals("1:00:01", Progress.time(3601));
    }
}
