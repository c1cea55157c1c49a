package casp.kernel;

/**
 * Array conversions between float32 and bfloat16 (the top 16 bits of a float32), for calibration
 * activations kept in half the memory. Rounding is to nearest even; NaN stays NaN.
 */
public final class Bf16 {
    private Bf16() {}

    /** bfloat16 bits of f, rounded to nearest even. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x40); // quiet NaN
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** The float32 value of bfloat16 bits (exact). */
    public static float toFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** dst[dstOff + i] = bf16(src[srcOff + i]) for i < n. */
    public static void fromFloats(float[] src, int srcOff, short[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) dst[dstOff + i] = fromFloat(src[srcOff + i]);
    }

    /** dst[dstOff + i] = float(src[srcOff + i]) for i < n. */
    public static void toFloats(short[] src, int srcOff, float[] dst, int dstOff, int n) {
        for (int i = 0; i < n; i++) dst[dstOff + i] = Float.intBitsToFloat((src[srcOff + i] & 0xffff) << 16);
    }

    /** Rounds every value of a[off, off + n) to the nearest bfloat16 in place. */
    public static void round(float[] a, int off, int n) {
        for (int i = off; i < off + n; i++) a[i] = toFloat(fromFloat(a[i]));
    }
}
