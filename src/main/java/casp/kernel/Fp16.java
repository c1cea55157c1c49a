package casp.kernel;

/**
 * IEEE 754 binary16 (fp16) conversions, as GPTQ stores its scales. Java 17 has no
 * Float.floatToFloat16, so this is done by hand: exact for every fp16 value, round to nearest
 * even on the way down, with subnormals, infinities and NaN.
 */
public final class Fp16 {
    private Fp16() {}

    /** The float value of the fp16 bit pattern h (low 16 bits used). */
    public static float toFloat(short h) {
        int bits = h & 0xFFFF;
        int sign = (bits & 0x8000) << 16;
        int exp = (bits >>> 10) & 0x1F;
        int mant = bits & 0x3FF;
        if (exp == 0x1F) return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13)); // inf / NaN
        if (exp != 0) return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
        // Subnormal (or zero): mant * 2^-24, exactly representable as a float.
        float v = mant * 0x1p-24f;
        return sign != 0 ? -v : v;
    }

    /** The fp16 bit pattern nearest to f (ties to even); overflow gives infinity, NaN stays NaN. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs >= 0x7F800000) {
            // inf or NaN (keep a quiet NaN payload bit so it stays a NaN)
            return (short) (sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 | ((abs >>> 13) & 0x3FF) : 0));
        }
        if (abs >= 0x477FF000) return (short) (sign | 0x7C00); // rounds to >= 65520: infinity
        if (abs >= 0x38800000) {
            // Normal fp16: rebias the exponent, round the 13 dropped mantissa bits to nearest even.
            int h = (abs - (112 << 23)) >>> 13;
            int rest = abs & 0x1FFF;
            if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) h++;
            return (short) (sign | h);
        }
        // Subnormal fp16 (or zero): value / 2^-24 rounded to nearest even integer.
        float scaled = Float.intBitsToFloat(abs) * 0x1p24f; // exact: a power-of-two scaling
        int h = (int) Math.rint(scaled);
        return (short) (sign | h);
    }

    /** Converts an array of floats to fp16 bit patterns. */
    public static short[] fromFloats(float[] f) {
        short[] h = new short[f.length];
        for (int i = 0; i < f.length; i++) h[i] = fromFloat(f[i]);
        return h;
    }

    /** Converts an array of fp16 bit patterns to floats. */
    public static float[] toFloats(short[] h) {
        float[] f = new float[h.length];
        for (int i = 0; i < h.length; i++) f[i] = toFloat(h[i]);
        return f;
    }
}
