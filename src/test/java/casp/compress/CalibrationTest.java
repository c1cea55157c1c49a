package casp.compress;

import casp.TestData;
import casp.io.BadInputException;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CalibrationTest {

    private static int[] stream(int n) {
        int[] s = new int[n];
        for (int i = 0; i < n; i++) s[i] = 10 + i; // token value = 10 + position: windows reveal their start
        return s;
    }

    @Test
    void windowsStartWithThePrefixAndDoNotOverlapWhenTheyFit() {
        int[] s = stream(1000);
        for (long seed = 0; seed < 20; seed++) {
            int[][] w = Calibration.textWindows(s, new int[]{1}, 7, 100, seed);
            assertEquals(7, w.length);
            int prevEnd = -1;
            for (int[] win : w) {
                assertEquals(100, win.length);
                assertEquals(1, win[0], "BOS first");
                int start = win[1] - 10;
                for (int j = 1; j < 100; j++) assertEquals(10 + start + j - 1, win[j], "consecutive stream tokens");
                assertTrue(start > prevEnd, "windows in stream order, no overlap");
                prevEnd = start + 98;
                assertTrue(prevEnd < 1000);
            }
        }
    }

    @Test
    void windowsAreSeededAndCoverTheStream() {
        int[] s = stream(5000);
        assertTrue(Arrays.deepEquals(Calibration.textWindows(s, new int[]{1}, 5, 64, 42),
                Calibration.textWindows(s, new int[]{1}, 5, 64, 42)));
        assertFalse(Arrays.deepEquals(Calibration.textWindows(s, new int[]{1}, 5, 64, 42),
                Calibration.textWindows(s, new int[]{1}, 5, 64, 43)));
        // Over many seeds the first window's start takes values across the whole allowed range.
        int min = Integer.MAX_VALUE, max = -1;
        for (long seed = 0; seed < 200; seed++) {
            int start = Calibration.textWindows(s, new int[0], 1, 64, seed)[0][0] - 10;
            min = Math.min(min, start);
            max = Math.max(max, start);
        }
        assertTrue(min < 500 && max > 5000 - 64 - 500, "starts spread over the stream: " + min + ".." + max);
    }

    @Test
    void moreWindowsThanFitMayOverlap() {
        int[] s = stream(300);
        int[][] w = Calibration.textWindows(s, new int[0], 10, 100, 3);
        assertEquals(10, w.length);
        for (int[] win : w) {
            int start = win[0] - 10;
            assertTrue(start >= 0 && start + 100 <= 300);
            for (int j = 0; j < 100; j++) assertEquals(10 + start + j, win[j]);
        }
        assertThrows(IllegalArgumentException.class, () -> Calibration.textWindows(stream(50), new int[]{1}, 1, 100, 0));
    }

    @Test
    void textFileSamplesAreTokenEmbeddings() throws Exception {
        Path dir = TestData.model("stories260K");
        Path text = TestData.file("models/stories260K/reference/eval.txt");
        LlamaModel m = LlamaModel.load(dir);
        Tokenizer tok = Tokenizer.load(dir);
        Calibration c = Calibration.fromTextFile(m, tok, text, 4, 64, 7);
        assertEquals(4, c.size());
        assertEquals(4 * 64, c.tokens());
        assertEquals(4L * 64 * 64 * 4, c.bytes());
        int[][] ids = Calibration.textWindows(tok.encode(Files.readString(text), false), tok.prefixIds(), 4, 64, 7);
        for (int i = 0; i < 4; i++) {
            assertEquals(1, ids[i][0]);
            assertArrayEquals(m.embed(ids[i]), c.sample(i).hidden());
        }
        Path tiny = Files.createTempFile("casp-calib", ".txt");
        try {
            Files.writeString(tiny, "Once upon a time");
            assertThrows(BadInputException.class, () -> Calibration.fromTextFile(m, tok, tiny, 1, 64, 0));
        } finally {
            Files.delete(tiny);
        }
    }
}
