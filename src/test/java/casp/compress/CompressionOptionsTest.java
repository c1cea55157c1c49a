package casp.compress;

import casp.io.BadInputException;
import org.junit.jupiter.api.Test;

import static casp.compress.CompressionOptions.AUTO_GROUP;
import static casp.compress.CompressionOptions.groupSizeFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class CompressionOptionsTest {

    @Test
    void defaultGroupIs128OrTheLargestDivisorBelow() {
        assertEquals(128, groupSizeFor(AUTO_GROUP, 4096));
        assertEquals(128, groupSizeFor(AUTO_GROUP, 11008));
        assertEquals(-1, groupSizeFor(AUTO_GROUP, 64), "a row of 64 is one group");
        assertEquals(86, groupSizeFor(AUTO_GROUP, 172), "stories260K's intermediate width");
        assertEquals(100, groupSizeFor(AUTO_GROUP, 4100));
        assertEquals(128, groupSizeFor(AUTO_GROUP, 173), "a prime width keeps 128 and a short last group");
        assertEquals(32, groupSizeFor(32, 172), "explicit sizes are kept");
        assertEquals(-1, groupSizeFor(256, 172));
        assertEquals(-1, groupSizeFor(-1, 4096));
    }

    @Test
    void badOptionsAreUserErrors() {
        assertThrows(BadInputException.class, () -> new CompressionOptions("awq", 4, 0, false, false, true, 8, 64, 0, 0.01));
        assertThrows(BadInputException.class, () -> new CompressionOptions("gptq", 5, 0, false, false, true, 8, 64, 0, 0.01));
        assertThrows(BadInputException.class, () -> new CompressionOptions("gptq", 4, -3, false, false, true, 8, 64, 0, 0.01));
        assertThrows(BadInputException.class, () -> new CompressionOptions("gptq", 4, 0, false, false, true, 0, 64, 0, 0.01));
    }
}
