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
    /** 2L shorts: the bits of a float vector, read as L ints of two bf16 values each. */
    private static final VectorSpecies<Short> PAIRS = VectorSpecies.of(short.class, FS.vectorShape());
    private static final VectorSpecies<Integer> PAIR_INTS = VectorSpecies.of(int.class, FS.vectorShape());

    /** Columns per step of the bf16 mat-vec: an int vector holds 2L values. */
    static final int BF16_STEP = 2 * L;

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
     * x[xOff, xOff + cols) in the column order of the bf16 mat-vec: per step of 2L columns, the L
     * even ones, then the L odd ones (the columns past the last whole step are not used); into xs
     * when it is long enough, else into a new array, which is returned.
     */
    static float[] splitPairs(float[] x, int xOff, int cols, float[] xs) {
        if (xs == null || xs.length < cols) xs = new float[cols];
        for (int c = 0; c + BF16_STEP <= cols; c += BF16_STEP) {
            for (int j = 0; j < L; j++) {
                xs[c + j] = x[xOff + c + 2 * j];
                xs[c + L + j] = x[xOff + c + 2 * j + 1];
            }
        }
        return xs;
    }

    /**
     * y[yOff + r] for rows [r0, r1): four bf16 rows (two fp16) share each load of x; bf16 reads x
     * as splitPairs left it in xs. A matrix on the heap is read in place, one outside it by buffer
     * loads or through a copy of the rows.
     */
    static void rows(HalfMatrix m, int r0, int r1, float[] x, int xOff, float[] xs, float[] y, int yOff) {
        final int cols = m.cols, block = m.bf16 ? 4 : 2;
        int r = r0;
        for (; r + block <= r1; r += block) {
            int from = r * cols;
            if (m.vectorBytes != null) {
                if (m.bf16) rows4Bf16(m.vectorBytes, from, cols, xs, y, yOff + r);
                else rows2Fp16(m.vectorBytes, from, cols, x, xOff, y, yOff + r);
            } else {
                short[] w = m.readable(from, block * cols);
                if (m.bf16) rows4Bf16(w, m.arrayBase(from), cols, xs, y, yOff + r);
                else rows2Fp16(w, m.arrayBase(from), cols, x, xOff, y, yOff + r);
            }
            int tail = m.bf16 ? cols / BF16_STEP * BF16_STEP : cols / L * L;
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

    /**
     * Four bf16 rows from value index o0 of a little-endian buffer, over the whole steps of 2L
     * columns. An int lane holds two values, the even column in its low half and the odd one in
     * its high half, so a shift and a mask make two float vectors of one load, without widening
     * shorts to ints; xs is x in the matching order (splitPairs). The body is written out: with
     * helper methods the method passes C2's inlining cutoff and boxes every vector. Eight rows
     * streamed ~8% faster, but C2 then sometimes failed one of the loop's reinterpret intrinsics
     * and boxed (VectorBoxingTest, 3 of 10 runs beside two busy loops; four rows: 0 of 10).
     */
    private static void rows4Bf16(ByteBuffer w, int o0, int cols, float[] xs, float[] y, int yOff) {
        final int s = 2 * cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c + BF16_STEP <= cols; c += BF16_STEP) {
            int b = 2 * (o0 + c);
            FloatVector xe = FloatVector.fromArray(FS, xs, c), xo = FloatVector.fromArray(FS, xs, c + L);
            IntVector v0 = IntVector.fromByteBuffer(PAIR_INTS, w, b, ByteOrder.LITTLE_ENDIAN);
            IntVector v1 = IntVector.fromByteBuffer(PAIR_INTS, w, b + s, ByteOrder.LITTLE_ENDIAN);
            IntVector v2 = IntVector.fromByteBuffer(PAIR_INTS, w, b + 2 * s, ByteOrder.LITTLE_ENDIAN);
            IntVector v3 = IntVector.fromByteBuffer(PAIR_INTS, w, b + 3 * s, ByteOrder.LITTLE_ENDIAN);
            a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a0);
            a1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a1);
            a2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a2);
            a3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a3);
            a0 = v0.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a0);
            a1 = v1.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a1);
            a2 = v2.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a2);
            a3 = v3.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a3);
        }
        y[yOff] = a0.reduceLanes(VectorOperators.ADD);
        y[yOff + 1] = a1.reduceLanes(VectorOperators.ADD);
        y[yOff + 2] = a2.reduceLanes(VectorOperators.ADD);
        y[yOff + 3] = a3.reduceLanes(VectorOperators.ADD);
    }

    /** Two fp16 rows from w[o0] (with four, C2 ran this loop at half the speed of the float32 mat-vec). */
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

    /** As the buffer version, from w[o0] (2L shorts loaded and read as L ints). */
    private static void rows4Bf16(short[] w, int o0, int cols, float[] xs, float[] y, int yOff) {
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c + BF16_STEP <= cols; c += BF16_STEP) {
            int o = o0 + c;
            FloatVector xe = FloatVector.fromArray(FS, xs, c), xo = FloatVector.fromArray(FS, xs, c + L);
            IntVector v0 = (IntVector) ShortVector.fromArray(PAIRS, w, o).reinterpretAsInts();
            IntVector v1 = (IntVector) ShortVector.fromArray(PAIRS, w, o + cols).reinterpretAsInts();
            IntVector v2 = (IntVector) ShortVector.fromArray(PAIRS, w, o + 2 * cols).reinterpretAsInts();
            IntVector v3 = (IntVector) ShortVector.fromArray(PAIRS, w, o + 3 * cols).reinterpretAsInts();
            a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a0);
            a1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a1);
            a2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a2);
            a3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(xe, a3);
            a0 = v0.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a0);
            a1 = v1.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a1);
            a2 = v2.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a2);
            a3 = v3.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().fma(xo, a3);
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

    /**
     * wf[r * kc + c] = W[r0 + r, k0 + c] for r below n (zero for the rows past the matrix's last)
     * and c below kc, a multiple of BF16_STEP, in the kernels' column order: bf16 in the order of
     * splitPairs, fp16 in the natural order.
     */
    static void widenBlock(HalfMatrix m, int r0, int n, int k0, int kc, float[] wf) {
        int have = Math.max(0, Math.min(n, m.rows - r0));
        for (int r = 0; r < have; r++) {
            int from = (r0 + r) * m.cols + k0, o = r * kc;
            if (m.vectorBytes != null) {
                if (m.bf16) splitBf16(m.vectorBytes, from, kc, wf, o);
                else widen(m.vectorBytes, from, kc, false, wf, o);
            } else {
                short[] w = m.readable(from, kc);
                if (m.bf16) splitBf16(w, m.arrayBase(from), kc, wf, o);
                else widen(w, m.arrayBase(from), kc, false, wf, o);
            }
        }
        java.util.Arrays.fill(wf, have * kc, n * kc, 0f);
    }

    /** bf16 values [from, from + n) of a little-endian buffer widened in the order of splitPairs; n a multiple of BF16_STEP. */
    private static void splitBf16(ByteBuffer w, int from, int n, float[] dst, int off) {
        for (int c = 0; c < n; c += BF16_STEP) {
            IntVector v = IntVector.fromByteBuffer(PAIR_INTS, w, 2 * (from + c), ByteOrder.LITTLE_ENDIAN);
            v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + c);
            v.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().intoArray(dst, off + c + L);
        }
    }

    /** As the buffer version, from w[from]. */
    private static void splitBf16(short[] w, int from, int n, float[] dst, int off) {
        for (int c = 0; c < n; c += BF16_STEP) {
            IntVector v = (IntVector) ShortVector.fromArray(PAIRS, w, from + c).reinterpretAsInts();
            v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, off + c);
            v.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats().intoArray(dst, off + c + L);
        }
    }
}
