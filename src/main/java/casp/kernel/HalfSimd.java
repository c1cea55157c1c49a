package casp.kernel;

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
 * speed of the float32 mat-vec (32000 x 1024 on 2 threads: 8.2 ms against 4.7 with two).
 */
final class HalfSimd {
    private HalfSimd() {}

    private static final VectorSpecies<Float> FS = VectorProbe.floatSpecies();
    private static final VectorSpecies<Integer> IS = VectorProbe.intSpecies();
    /** L shorts: half the bits of a float vector. */
    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class, VectorShape.forBitSize(FS.vectorBitSize() / 2));
    private static final int L = FS.length();

    private static FloatVector fp16(short[] w, int off) {
        IntVector i = (IntVector) ShortVector.fromArray(SS, w, off).convertShape(VectorOperators.S2I, IS, 0);
        // i is sign-extended, so after << 13 bit 31 holds the sign and bits 28-30 copies of it: cleared.
        return i.lanewise(VectorOperators.LSHL, 13).lanewise(VectorOperators.AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
    }

    private static FloatVector bf16(short[] w, int off) {
        IntVector i = (IntVector) ShortVector.fromArray(SS, w, off).convertShape(VectorOperators.S2I, IS, 0);
        return i.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** y[yOff + r] for rows [r0, r1): four rows share each load of x. */
    static void rows(HalfMatrix m, int r0, int r1, float[] x, int xOff, float[] y, int yOff) {
        int r = r0;
        if (m.bf16) {
            for (; r + 4 <= r1; r += 4) rows4Bf16(m, r, x, xOff, y, yOff);
        } else {
            for (; r + 2 <= r1; r += 2) rows2Fp16(m, r, x, xOff, y, yOff);
        }
        for (; r < r1; r++) y[yOff + r] = m.rowScalar(r, x, xOff, 0, m.cols);
    }

    /** Two rows at a time: with four, C2 ran this loop at half the speed of the float32 mat-vec. */
    private static void rows2Fp16(HalfMatrix m, int r, float[] x, int xOff, float[] y, int yOff) {
        final short[] w = m.w;
        final int cols = m.cols, o0 = r * cols, o1 = o0 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0;
        int c = 0;
        for (; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = fp16(w, o0 + c).fma(xv, a0);
            a1 = fp16(w, o1 + c).fma(xv, a1);
        }
        y[yOff + r] = a0.reduceLanes(VectorOperators.ADD) + m.rowScalar(r, x, xOff, c, cols);
        y[yOff + r + 1] = a1.reduceLanes(VectorOperators.ADD) + m.rowScalar(r + 1, x, xOff, c, cols);
    }

    private static void rows4Bf16(HalfMatrix m, int r, float[] x, int xOff, float[] y, int yOff) {
        final short[] w = m.w;
        final int cols = m.cols, o0 = r * cols, o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c + L <= cols; c += L) {
            FloatVector xv = FloatVector.fromArray(FS, x, xOff + c);
            a0 = bf16(w, o0 + c).fma(xv, a0);
            a1 = bf16(w, o1 + c).fma(xv, a1);
            a2 = bf16(w, o2 + c).fma(xv, a2);
            a3 = bf16(w, o3 + c).fma(xv, a3);
        }
        y[yOff + r] = a0.reduceLanes(VectorOperators.ADD) + m.rowScalar(r, x, xOff, c, cols);
        y[yOff + r + 1] = a1.reduceLanes(VectorOperators.ADD) + m.rowScalar(r + 1, x, xOff, c, cols);
        y[yOff + r + 2] = a2.reduceLanes(VectorOperators.ADD) + m.rowScalar(r + 2, x, xOff, c, cols);
        y[yOff + r + 3] = a3.reduceLanes(VectorOperators.ADD) + m.rowScalar(r + 3, x, xOff, c, cols);
    }

    /** dst[off + i] = the float of w[from + i] for i below the largest multiple of L <= n; returns that count. */
    static int widen(HalfMatrix m, int from, int n, float[] dst, int off) {
        int i = 0;
        if (m.bf16) {
            for (; i + L <= n; i += L) bf16(m.w, from + i).intoArray(dst, off + i);
        } else {
            for (; i + L <= n; i += L) fp16(m.w, from + i).intoArray(dst, off + i);
        }
        return i;
    }
}
