package casp.kernel;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels of {@link HalfMatrix}, loaded only if VectorSupport.enabled(): L 16-bit values
 * are loaded as a half-width short vector and sign-extended to L ints. bf16 is the top half of a
 * float (shift by 16). fp16: shifted by 13, the sign lands in bit 31 and exponent and mantissa in
 * float position; with bits 28-30 (copies of the sign) cleared, the bits read as a float are the
 * value times 2^-112 (a denormal float for fp16 subnormals, still exact), so one multiply by 2^112
 * rebiases it. The fp16 and bf16 loops are separate methods (C2 in JDK 17 boxes a vector merged
 * from two branches); the fp16 one takes two rows at a time, as with four C2 ran it at half the
 * speed of the float32 mat-vec (32000 x 1024 on 2 threads: 8.2 ms against 4.7 with two). The
 * kernels over a mapped buffer repeat the array kernels' loops with buffer loads: a load passed in
 * as a function or an interface would box the vectors it returns.
 */
final class HalfSimd {
    private HalfSimd() {}

    private static final VectorSpecies<Float> FS = VectorProbe.floatSpecies();
    private static final VectorSpecies<Integer> IS = VectorProbe.intSpecies();
    /** L shorts: half the bits of a float vector. */
    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class, VectorShape.forBitSize(FS.vectorBitSize() / 2));
    private static final int L = FS.length();

    /**
     * Whether ShortVector loads from a ByteBuffer (JDK 17 to 19; later JDKs load from memory
     * segments instead, which this code, built for 17, cannot name).
     */
    static final boolean BUFFER_LOADS = hasBufferLoads();

    private static boolean hasBufferLoads() {
        try {
            ShortVector.class.getMethod("fromByteBuffer", VectorSpecies.class, ByteBuffer.class, int.class, ByteOrder.class);
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** fp16 value i (not byte i) of a little-endian buffer, widened. */
    private static FloatVector fp16(ByteBuffer w, int i) {
        IntVector v = (IntVector) ShortVector.fromByteBuffer(SS, w, 2 * i, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IS, 0);
        return v.lanewise(VectorOperators.LSHL, 13).lanewise(VectorOperators.AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
    }

    private static FloatVector bf16(ByteBuffer w, int i) {
        IntVector v = (IntVector) ShortVector.fromByteBuffer(SS, w, 2 * i, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.S2I, IS, 0);
        return v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector fp16(short[] w, int off) {
        IntVector i = (IntVector) ShortVector.fromArray(SS, w, off).convertShape(VectorOperators.S2I, IS, 0);
        // i is sign-extended, so after << 13 bit 31 holds the sign and bits 28-30 copies of it: cleared.
        return i.lanewise(VectorOperators.LSHL, 13).lanewise(VectorOperators.AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
    }

    private static FloatVector bf16(short[] w, int off) {
        IntVector i = (IntVector) ShortVector.fromArray(SS, w, off).convertShape(VectorOperators.S2I, IS, 0);
        return i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /**
     * y[yOff + r] for rows [r0, r1): four bf16 rows (two fp16) share each load of x. A matrix on
     * the heap is read in place, one outside it by buffer loads or through a copy of the rows.
     */
    static void rows(HalfMatrix m, int r0, int r1, float[] x, int xOff, float[] y, int yOff) {
        final int cols = m.cols, block = m.bf16 ? 4 : 2;
        int r = r0;
        for (; r + block <= r1; r += block) {
            int from = r * cols;
            if (m.vectorBytes != null) {
                if (m.bf16) rows4Bf16(m.vectorBytes, from, cols, x, xOff, y, yOff + r);
                else rows2Fp16(m.vectorBytes, from, cols, x, xOff, y, yOff + r);
            } else {
                short[] w = m.readable(from, block * cols);
                if (m.bf16) rows4Bf16(w, m.arrayBase(from), cols, x, xOff, y, yOff + r);
                else rows2Fp16(w, m.arrayBase(from), cols, x, xOff, y, yOff + r);
            }
            int tail = cols / L * L;
            if (tail < cols) for (int i = r; i < r + block; i++) y[yOff + i] += m.rowScalar(i, x, xOff, tail, cols);
        }
        for (; r < r1; r++) y[yOff + r] = m.rowScalar(r, x, xOff, 0, cols);
    }

    /** As the array version, loading from a little-endian buffer (value index o0, not byte index). */
    private static void rows2Fp16(ByteBuffer w, int o0, int cols, float[] x, int xOff, float[] y, int yOff) {
        final int o1 = o0 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0;
        for (int c = 0; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = fp16(w, o0 + c).fma(xv, a0);
            a1 = fp16(w, o1 + c).fma(xv, a1);
        }
        y[yOff] = a0.reduceLanes(VectorOperators.ADD);
        y[yOff + 1] = a1.reduceLanes(VectorOperators.ADD);
    }

    private static void rows4Bf16(ByteBuffer w, int o0, int cols, float[] x, int xOff, float[] y, int yOff) {
        final int o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = bf16(w, o0 + c).fma(xv, a0);
            a1 = bf16(w, o1 + c).fma(xv, a1);
            a2 = bf16(w, o2 + c).fma(xv, a2);
            a3 = bf16(w, o3 + c).fma(xv, a3);
        }
        y[yOff] = a0.reduceLanes(VectorOperators.ADD);
        y[yOff + 1] = a1.reduceLanes(VectorOperators.ADD);
        y[yOff + 2] = a2.reduceLanes(VectorOperators.ADD);
        y[yOff + 3] = a3.reduceLanes(VectorOperators.ADD);
    }

    /** Two rows at a time (with four, C2 ran this loop at half the speed of the float32 mat-vec); as rows4Bf16. */
    private static void rows2Fp16(short[] w, int o0, int cols, float[] x, int xOff, float[] y, int yOff) {
        final int o1 = o0 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0;
        for (int c = 0; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = fp16(w, o0 + c).fma(xv, a0);
            a1 = fp16(w, o1 + c).fma(xv, a1);
        }
        y[yOff] = a0.reduceLanes(VectorOperators.ADD);
        y[yOff + 1] = a1.reduceLanes(VectorOperators.ADD);
    }

    /** y[yOff, yOff + 4) = four rows from w[o0] over the columns below the last multiple of L (the caller adds the rest). */
    private static void rows4Bf16(short[] w, int o0, int cols, float[] x, int xOff, float[] y, int yOff) {
        final int o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = bf16(w, o0 + c).fma(xv, a0);
            a1 = bf16(w, o1 + c).fma(xv, a1);
            a2 = bf16(w, o2 + c).fma(xv, a2);
            a3 = bf16(w, o3 + c).fma(xv, a3);
        }
        y[yOff] = a0.reduceLanes(VectorOperators.ADD);
        y[yOff + 1] = a1.reduceLanes(VectorOperators.ADD);
        y[yOff + 2] = a2.reduceLanes(VectorOperators.ADD);
        y[yOff + 3] = a3.reduceLanes(VectorOperators.ADD);
    }

    /** As the array version, from value index from of a little-endian buffer. */
    static int widen(ByteBuffer w, int from, int n, boolean isBf16, float[] dst, int off) {
        int i = 0;
        if (isBf16) {
            for (; i + L <= n; i += L) bf16(w, from + i).intoArray(dst, off + i);
        } else {
            for (; i + L <= n; i += L) fp16(w, from + i).intoArray(dst, off + i);
        }
        return i;
    }

    /** dst[off + i] = the float of w[from + i] for i below the largest multiple of L <= n; returns that count. */
    static int widen(short[] w, int from, int n, boolean isBf16, float[] dst, int off) {
        int i = 0;
        if (isBf16) {
            for (; i + L <= n; i += L) bf16(w, from + i).intoArray(dst, off + i);
        } else {
            for (; i + L <= n; i += L) fp16(w, from + i).intoArray(dst, off + i);
        }
        return i;
    }
}
