package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class Fp16Test {

    @Test
    void knownValues() {
        assertEquals((short) 0x3C00, Fp16.fromFloat(1f));
        assertEquals((short) 0xC000, Fp16.fromFloat(-2f));
        assertEquals((short) 0x7BFF, Fp16.fromFloat(65504f));
        assertEquals((short) 0x7C00, Fp16.fromFloat(65520f)); // ties to even -> overflow
        assertEquals((short) 0x7BFF, Fp16.fromFloat(65519f));
        assertEquals((short) 0x0001, Fp16.fromFloat(0x1p-24f)); // smallest subnormal
        assertEquals((short) 0x0000, Fp16.fromFloat(0x1p-26f)); // rounds to zero
        assertEquals((short) 0x0400, Fp16.fromFloat(0x1p-14f)); // smallest normal
        assertEquals((short) 0x8000, Fp16.fromFloat(-0f));
        assertEquals((short) 0x3555, Fp16.fromFloat(1f / 3f));
        assertEquals(1f, Fp16.toFloat((short) 0x3C00));
        assertEquals(0x1p-24f, Fp16.toFloat((short) 0x0001));
        assertEquals(65504f, Fp16.toFloat((short) 0x7BFF));
        assertEquals(Float.NEGATIVE_INFINITY, Fp16.toFloat((short) 0xFC00));
        assertTrue(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(Float.NaN))));
    }

    @Test
    void everyHalfRoundTripsAndRoundsToNearest() {
        for (int h = 0; h < 65536; h++) {
            float f = Fp16.toFloat((short) h);
            if (Float.isNaN(f)) continue;
            assertEquals((short) h, Fp16.fromFloat(f), "pattern " + Integer.toHexString(h));
        }
        // Midpoints between neighbours round to the even one; slightly above rounds up.
        for (int h = 0x0001; h < 0x7BFF; h += 37) {
            float a = Fp16.toFloat((short) h), b = Fp16.toFloat((short) (h + 1));
            float mid = (float) (((double) a + b) / 2);
            short even = (h & 1) == 0 ? (short) h : (short) (h + 1);
            assertEquals(even, Fp16.fromFloat(mid), "midpoint after " + Integer.toHexString(h));
            assertEquals((short) (h + 1), Fp16.fromFloat(Math.nextUp(mid)));
        }
    }
}
