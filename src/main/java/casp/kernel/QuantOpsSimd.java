package casp.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Vector API paths of {@link QuantOps}; loaded only when VectorSupport.enabled(). */
final class QuantOpsSimd {
    private QuantOpsSimd() {}

    static final VectorSpecies<Float> F = VectorProbe.floatSpecies();
    static final int L = F.length();
    /** Byte species with as many lanes as F, or null when that would be narrower than 64 bits. */
    static final VectorSpecies<Byte> BYTES = L >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
    /** Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, half to even. */
    static final float ROUND_MAGIC = 12582912f;
    static final float RANGE = QuantOps.RANGE;
    private static final float TWO_23 = 8388608f;

    static void columnMinMax(float[] x, int off, int ld, int n, int count, float[] mn, float[] mx, int mOff) {
        int bound = F.loopBound(n);
        for (int c = 0; c < count; c++) {
            int base = off + c * ld;
            int r = 0;
            for (; r < bound; r += L) {
                FloatVector v = FloatVector.fromArray(F, x, base + r);
                FloatVector.fromArray(F, mn, mOff + r).min(v).intoArray(mn, mOff + r);
                FloatVector.fromArray(F, mx, mOff + r).max(v).intoArray(mx, mOff + r);
            }
            for (; r < n; r++) {
                float v = x[base + r];
                mn[mOff + r] = Math.min(mn[mOff + r], v);
                mx[mOff + r] = Math.max(mx[mOff + r], v);
            }
        }
    }

    static void quantize(float[] x, int xOff, int n, float[] scale, float[] zero, int sOff, float maxq,
                         byte[] codes, int cOff, float[] q, int qOff) {
        int bound = F.loopBound(n), r = 0;
        for (; r < bound; r += L) {
            FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
            FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
            // code = clamp(rint(x / s) + z, 0, maxq), written out here so no vector crosses a call
            FloatVector c = FloatVector.fromArray(F, x, xOff + r).div(s).max(-RANGE).min(RANGE)
                    .add(ROUND_MAGIC).sub(ROUND_MAGIC).add(z).max(0f).min(maxq);
            storeCodes(c, codes, cOff + r);
            if (q != null) c.sub(z).mul(s).intoArray(q, qOff + r);
        }
        QuantOps.quantizeTail(x, xOff, r, n, scale, zero, sOff, maxq, codes, cOff, q, qOff);
    }

    static void quantizeError(float[] x, int xOff, int n, float[] scale, float[] zero, int sOff, float maxq,
                              float d, byte[] codes, int cOff, float[] err, int eOff) {
        int bound = F.loopBound(n), r = 0;
        for (; r < bound; r += L) {
            FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
            FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
            FloatVector xv = FloatVector.fromArray(F, x, xOff + r);
            FloatVector c = xv.div(s).max(-RANGE).min(RANGE)
                    .add(ROUND_MAGIC).sub(ROUND_MAGIC).add(z).max(0f).min(maxq);
            storeCodes(c, codes, cOff + r);
            xv.sub(c.sub(z).mul(s)).div(d).intoArray(err, eOff + r);
        }
        QuantOps.quantizeErrorTail(x, xOff, r, n, scale, zero, sOff, maxq, d, codes, cOff, err, eOff);
    }

    static void rank1Sub(float[] e, int eOff, int n, float[] u, int uOff, int count, float[] y, int yOff, int ld) {
        int r = 0;
        // Two vectors of e per pass, each kept in a register across all count columns.
        for (; r + 2 * L <= n; r += 2 * L) {
            FloatVector e0 = FloatVector.fromArray(F, e, eOff + r);
            FloatVector e1 = FloatVector.fromArray(F, e, eOff + r + L);
            for (int j = 0; j < count; j++) {
                FloatVector nu = FloatVector.broadcast(F, -u[uOff + j]);
                int p = yOff + j * ld + r;
                e0.fma(nu, FloatVector.fromArray(F, y, p)).intoArray(y, p);
                e1.fma(nu, FloatVector.fromArray(F, y, p + L)).intoArray(y, p + L);
            }
        }
        for (; r + L <= n; r += L) {
            FloatVector e0 = FloatVector.fromArray(F, e, eOff + r);
            for (int j = 0; j < count; j++) {
                int p = yOff + j * ld + r;
                e0.fma(FloatVector.broadcast(F, -u[uOff + j]), FloatVector.fromArray(F, y, p)).intoArray(y, p);
            }
        }
        if (r < n) {
            for (int j = 0; j < count; j++) {
                float nu = -u[uOff + j];
                int p = yOff + j * ld;
                for (int rr = r; rr < n; rr++) y[p + rr] = Math.fma(e[eOff + rr], nu, y[p + rr]); // as the lanes
            }
        }
    }

    static void gridError(float[] x, int off, int ld, int n, int count, float[] scale, float[] zero, int sOff,
                          float maxq, float norm, float[] acc, int aOff) {
        boolean square = norm == 2f;
        int bound = F.loopBound(n), r = 0;
        for (; r < bound; r += L) {
            FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
            FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
            FloatVector sum = FloatVector.zero(F);
            for (int c = 0; c < count; c++) {
                FloatVector xv = FloatVector.fromArray(F, x, off + c * ld + r);
                FloatVector d = xv.div(s).max(-RANGE).min(RANGE).add(ROUND_MAGIC).sub(ROUND_MAGIC)
                        .add(z).max(0f).min(maxq).sub(z).mul(s).sub(xv).abs();
                sum = sum.add(square ? d.mul(d) : d.lanewise(VectorOperators.POW, norm));
            }
            FloatVector.fromArray(F, acc, aOff + r).add(sum).intoArray(acc, aOff + r);
        }
        QuantOps.gridErrorTail(x, off, ld, r, n, count, scale, zero, sOff, maxq, norm, acc, aOff);
    }

    static double dot(float[] a, int aOff, float[] b, int bOff, int n) {
        double total = 0;
        int r = 0;
        // float partial sums over short stretches, folded into double so long rows keep precision
        final int stretch = 64 * L;
        while (r + L <= n) {
            int end = Math.min(n, r + stretch);
            FloatVector sum = FloatVector.zero(F);
            for (; r + L <= end; r += L) {
                sum = FloatVector.fromArray(F, a, aOff + r).fma(FloatVector.fromArray(F, b, bOff + r), sum);
            }
            total += sum.reduceLanes(VectorOperators.ADD);
        }
        for (; r < n; r++) total += (double) a[aOff + r] * b[bOff + r];
        return total;
    }

    /** float -> byte follows Java's (byte) (int) cast: codes up to 255 wrap and read back with & 0xff. */
    private static void storeCodes(FloatVector c, byte[] codes, int off) {
        if (BYTES != null) {
            // c holds whole numbers in [0, 255]: in c + 2^23 they are the low mantissa bits, so the
            // int -> byte narrowing of its bits is (byte) (int) c. JDK 17's C2 has no float -> int
            // vector cast (an F2B or F2I conversion boxes every vector); the narrowing is one instruction.
            IntVector bits = c.add(TWO_23).reinterpretAsInts();
            ((ByteVector) bits.convertShape(VectorOperators.I2B, BYTES, 0)).intoArray(codes, off);
        } else { // 4-lane floats: byte vectors are at least 64 bits
            for (int i = 0; i < L; i++) codes[off + i] = (byte) (int) c.lane(i);
        }
    }
}
