package casp.tensor;

/**
 * Element types of stored tensors, with the safetensors names. Conversions of the 16-bit float
 * formats are exact (subnormals, infinities and NaN included); fp16 goes through
 * casp.kernel.Fp16 (Float.float16ToFloat only exists from Java 20 on).
 */
public enum DType {
    F64("F64", 8), F32("F32", 4), F16("F16", 2), BF16("BF16", 2),
    I64("I64", 8), I32("I32", 4), I16("I16", 2), I8("I8", 1), U8("U8", 1), BOOL("BOOL", 1);

    private final String safetensorsName;
    private final int bytes;

    DType(String safetensorsName, int bytes) {
        this.safetensorsName = safetensorsName;
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The name used in safetensors headers ("F32", "BF16", ...). */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** True for the types that {@link casp.tensor.DType#toFloat} style reads can convert to float32. */
    public boolean isFloatingPoint() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    /** Looks a safetensors dtype name up; returns null when unknown. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) if (t.safetensorsName.equals(name)) return t;
        return null;
    }

    /** IEEE 754 binary16 bits to float, exact for every input (the kernel's conversion). */
    public static float f16ToFloat(short h) {
        return casp.kernel.Fp16.toFloat(h);
    }

    /** float to IEEE 754 binary16 bits, round to nearest even, overflow to infinity. */
    public static short floatToF16(float f) {
        return casp.kernel.Fp16.fromFloat(f);
    }

    /** bfloat16 bits to float (exact: bf16 is the top half of a float). */
    public static float bf16ToFloat(short b) {
        return casp.kernel.Bf16.toFloat(b);
    }

    /** float to bfloat16 bits, round to nearest even; NaN stays NaN (the kernel's conversion). */
    public static short floatToBf16(float f) {
        return casp.kernel.Bf16.fromFloat(f);
    }
}
