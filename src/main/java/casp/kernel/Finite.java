package casp.kernel;

import java.nio.ShortBuffer;

/**
 * Finds NaN and infinite values in weights as they are loaded, so that a damaged checkpoint is
 * refused with the tensor named instead of producing NaN logits (or empty text) much later.
 * One pass at memory speed; the position is searched for only when something was found.
 */
public final class Finite {
    private Finite() {}

    private static final boolean SIMD = VectorSupport.enabled();
    /** Exponent bits of an IEEE half (all ones: Inf or NaN) and of a bfloat16. */
    static final short F16_EXPONENT = 0x7c00, BF16_EXPONENT = 0x7f80;

    /** Index of the first NaN or infinity in a[0 .. n), or -1 when all are finite. */
    public static long firstNonFinite(float[] a, int n) {
        if (SIMD ? !FiniteSimd.anyNonFinite(a, n) : !anyNonFiniteScalar(a, n)) return -1;
        for (int i = 0; i < n; i++) if (!Float.isFinite(a[i])) return i;
        return -1;
    }

    /** Index of the first NaN or infinity among n raw F16 (bf16 false) or BF16 values, or -1. */
    public static long firstNonFinite(short[] h, int n, boolean bf16) {
        short mask = bf16 ? BF16_EXPONENT : F16_EXPONENT;
        if (SIMD ? !FiniteSimd.anyExponentAllOnes(h, n, mask) : !anyExponentAllOnesScalar(h, n, mask)) return -1;
        for (int i = 0; i < n; i++) if ((h[i] & mask) == mask) return i;
        return -1;
    }

    /** Values checked per step of {@link #firstNonFinite(ShortBuffer, boolean)}. */
    private static final int BUFFER_STEP = 1 << 16;

    /**
     * Index of the first NaN or infinity among the F16 (bf16 false) or BF16 values w[0, capacity),
     * or -1; a mapped buffer is read through a small array, a step at a time.
     */
    public static long firstNonFinite(ShortBuffer w, boolean bf16) {
        int n = w.capacity();
        if (w.hasArray() && w.arrayOffset() == 0) return firstNonFinite(w.array(), n, bf16);
        short[] step = new short[Math.min(n, BUFFER_STEP)];
        for (int from = 0; from < n; from += step.length) {
            int len = Math.min(step.length, n - from);
            w.get(from, step, 0, len);
            long at = firstNonFinite(step, len, bf16);
            if (at >= 0) return from + at;
        }
        return -1;
    }

    static boolean anyNonFiniteScalar(float[] a, int n) {
        // x * 0 is 0 for every finite x and NaN for NaN and +-Inf: one sum tells.
        float s = 0;
        for (int i = 0; i < n; i++) s += a[i] * 0f;
        return s != 0;
    }

    static boolean anyExponentAllOnesScalar(short[] h, int n, short mask) {
        for (int i = 0; i < n; i++) if ((h[i] & mask) == mask) return true;
        return false;
    }
}
