package casp.compress;

import casp.io.BadInputException;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CalibrationBudgetTest {
    private static final long MIB = 1 << 20;

    @Test
    void activationsOverTheHeapAreRefusedWithoutSpillSpace() {
        // 128 x 512 x 64 x 4 bytes = 16 MiB
        assertDoesNotThrow(() -> CalibrationBudget.checkText(128, 512, 64, 16 * MIB));
        BadInputException e = assertThrows(BadInputException.class, () -> CalibrationBudget.checkText(128, 512, 64, 16 * MIB - 1));
        assertTrue(e.getMessage().contains("--samples 128"), e.getMessage());
    }

    @Test
    void aSpilledStoreMayExceedTheMemoryLimit() {
        assertDoesNotThrow(() -> CalibrationBudget.checkText(128, 512, 64, DType.F32, 4 * MIB, 12 * MIB));
        assertThrows(BadInputException.class, () -> CalibrationBudget.checkText(128, 512, 64, DType.F32, 4 * MIB, 12 * MIB - 1));
        // bfloat16 activations take half the room
        assertDoesNotThrow(() -> CalibrationBudget.checkText(128, 512, 64, DType.BF16, 4 * MIB, 4 * MIB));
        BadInputException e = assertThrows(BadInputException.class,
                () -> CalibrationBudget.checkText(2_000_000_000, 512, 64, DType.BF16, 4 * MIB, 1L << 40));
        assertTrue(e.getMessage().contains("--samples 2000000000") && e.getMessage().contains("disk"), e.getMessage());
    }
}
