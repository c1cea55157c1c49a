package casp.io;

import org.junit.jupiter.api.Test;

import static casp.io.WeightPlacement.HEAP;
import static casp.io.WeightPlacement.MAP;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** AUTO's rule: the heap when the 16-bit weights take at most half of the machine and fit in the free heap with room to spare. */
class WeightPlacementTest {
    private static final long GIB = 1L << 30;

    @Test
    void smallModelOnABigMachineGoesToTheHeap() {
        assertEquals(HEAP, WeightPlacement.choose(2 * GIB, 24 * GIB, 18 * GIB));
    }

    @Test
    void aModelOfMoreThanHalfTheMachineStaysMapped() {
        // a 7B model in bf16 (13.5 GB) on 24 GiB: mapped, even with the heap to hold it
        assertEquals(MAP, WeightPlacement.choose(13_500_000_000L, 24 * GIB, 18 * GIB));
        assertEquals(HEAP, WeightPlacement.choose(12 * GIB, 24 * GIB, 18 * GIB));
        assertEquals(MAP, WeightPlacement.choose(12 * GIB + 1, 24 * GIB, 18 * GIB));
    }

    @Test
    void theHeapMustKeepAQuarterOfTheWeightsAndAtLeastOneGibFree() {
        assertEquals(HEAP, WeightPlacement.choose(8 * GIB, 64 * GIB, 10 * GIB));       // 2 GiB spare needed, 2 left
        assertEquals(MAP, WeightPlacement.choose(8 * GIB + 1, 64 * GIB, 10 * GIB));
        assertEquals(HEAP, WeightPlacement.choose(GIB, 64 * GIB, 2 * GIB));            // the 1 GiB floor
        assertEquals(MAP, WeightPlacement.choose(GIB, 64 * GIB, 2 * GIB - 1));
    }

    @Test
    void unknownMachineMemoryOrNoSixteenBitTensorsMeanMapped() {
        assertEquals(MAP, WeightPlacement.choose(GIB, 0, 100 * GIB));
        assertEquals(MAP, WeightPlacement.choose(0, 64 * GIB, 32 * GIB));
    }
}
