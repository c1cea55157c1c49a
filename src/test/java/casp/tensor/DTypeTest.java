package casp.tensor;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class DTypeTest {
    /** Reference binary16 decoding by the formula of IEEE 754, in double. */
    private static double f16Reference(int bits) {
        int s = (bits >> 15) & 1, e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
        double sign = s == 1 ? -1 : 1;
        if (e == 0) return sign * m * Math.pow(2, -24);
        if (e == 31) return m == 0 ? sign * Double.POSITIVE_INFINITY : Double.NaN;
        return sign * (1 + m / 1024.0) * Math.pow(2, e - 15);
    }

    @Test
    void everyF16BitPatternDecodesExactly() {
        for (int bits = 0; bits < 65536; bits++) {
            float f = DType.f16ToFloat((short) bits);
            double ref = f16Reference(bits);
            if (Double.isNaN(ref)) {
                assertTrue(Float.isNaN(f), "NaN " + bits);
            } else {
                assertEquals(ref, f, 0.0, "bits " + Integer.toHexString(bits));
                assertEquals((bits & 0x8000) != 0, (Float.floatToRawIntBits(f) & 0x80000000) != 0, "sign of " + bits);
                // and it encodes back to the same bits
                assertEquals(bits, DType.floatToF16(f) & 0xffff, "round trip " + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void f16EncodingRoundsToNearestEven() {
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1).
        assertEquals(0x3c00, DType.floatToF16(1f + 0x1p-11f) & 0xffff);
        // slightly above halfway rounds up
        assertEquals(0x3c01, DType.floatToF16(1f + 0x1p-11f + 0x1p-20f) & 0xffff);
        // overflow and the largest finite value
        assertEquals(0x7c00, DType.floatToF16(65520f) & 0xffff);
        assertEquals(0x7bff, DType.floatToF16(65504f) & 0xffff);
        // smallest subnormal and underflow to zero
        assertEquals(0x0001, DType.floatToF16(0x1p-24f) & 0xffff);
        assertEquals(0x0000, DType.floatToF16(0x1p-26f) & 0xffff);
        assertTrue(Float.isNaN(DType.f16ToFloat(DType.floatToF16(Float.NaN))));
        // random values: the nearest f16 is chosen
        java.util.Random r = new java.util.Random(1);
        for (int i = 0; i < 20000; i++) {
            float x = (float) ((r.nextDouble() - 0.5) * Math.pow(2, r.nextInt(40) - 25));
            float y = DType.f16ToFloat(DType.floatToF16(x));
            short bits = DType.floatToF16(x);
            // neighbours in magnitude (same sign); at zero only the larger one exists
            int sign = bits & 0x8000, mag = bits & 0x7fff;
            float up = DType.f16ToFloat((short) (sign | (mag + 1)));
            float down = mag == 0 ? up : DType.f16ToFloat((short) (sign | (mag - 1)));
            assertTrue(Math.abs(y - x) <= Math.abs(up - x) && Math.abs(y - x) <= Math.abs(down - x), "nearest for " + x);
        }
    }

    @Test
    void bf16Conversions() {
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f)));
        assertEquals(Float.NEGATIVE_INFINITY, DType.bf16ToFloat(DType.floatToBf16(Float.NEGATIVE_INFINITY)));
        assertTrue(Float.isNaN(DType.bf16ToFloat(DType.floatToBf16(Float.NaN))));
        // subnormal float survives (bf16 keeps the float exponent range)
        float sub = Float.intBitsToFloat(0x00010000);
        assertEquals(sub, DType.bf16ToFloat(DType.floatToBf16(sub)));
        // ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7
        assertEquals(1f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, DType.bf16ToFloat(DType.floatToBf16(1f + 0x1p-7f + 0x1p-8f)));
    }
}
