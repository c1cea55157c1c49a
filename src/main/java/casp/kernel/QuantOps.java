package casp.kernel;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector loops of scalar (min/max grid) quantization: what RTN and GPTQ spend their non-GEMM time on.
 *
 * <p>Every operation works on "columns": runs of {@code n} contiguous floats (one input column of a
 * weight matrix stored transposed, i.e. {@code x[off + c * ld + r]} is row r of column c), with
 * per-row quantization parameters {@code scale[sOff + r]}, {@code zero[sOff + r]}. Rows are
 * independent, so all loops run along rows, which is what the vectors want.
 *
 * <p>The quantizer is q(x) = scale * (clamp(rint(x / scale) + zero, 0, maxq) - zero) with rint
 * rounding half to even (as torch.round): the vector path rounds with the 1.5 * 2^23 trick after
 * clamping |x / scale| below 2^22, which gives exactly Math.rint's result there, so the scalar
 * and vector paths produce the same codes.
 */
public final class QuantOps {
    private QuantOps() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();
    /** Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, half to even. */
    private static final float ROUND_MAGIC = 12582912f;
    /** |x / scale| is clamped to this before rounding (below 2^22, far beyond any maxq). */
    private static final float RANGE = 4_000_000f;
    // TODO(kernel-gemm merge): consult casp.kernel.VectorSupport for the scalar fallback / forced width.
    private static final boolean VECTOR = L > 1;

    /** Rounds like Math.rint for |v| <= RANGE; used by the scalar paths so both paths agree. */
    private static float rint(float v) {
        return (float) Math.rint(v);
    }

    /** The quantized value of one x: scale * (clamp(rint(x/scale) + zero, 0, maxq) - zero). */
    public static float quantize(float x, float scale, float zero, float maxq) {
        return scale * (code(x, scale, zero, maxq) - zero);
    }

    /** The integer code of one x, as a float in [0, maxq]. */
    public static float code(float x, float scale, float zero, float maxq) {
        float v = Math.max(-RANGE, Math.min(RANGE, x / scale));
        return Math.max(0f, Math.min(maxq, rint(v) + zero));
    }

    /**
     * Per-row running min and max over {@code count} columns: mn[r] = min(mn[r], x[off + c*ld + r]).
     * The caller initialises mn and mx (GPTQ's grid starts both at 0, so the range includes 0).
     */
    public static void columnMinMax(float[] x, int off, int ld, int n, int count,
                                    float[] mn, float[] mx, int mOff) {
        for (int c = 0; c < count; c++) {
            int base = off + c * ld;
            int r = 0;
            if (VECTOR) {
                for (; r <= n - L; r += L) {
                    FloatVector v = FloatVector.fromArray(F, x, base + r);
                    FloatVector.fromArray(F, mn, mOff + r).min(v).intoArray(mn, mOff + r);
                    FloatVector.fromArray(F, mx, mOff + r).max(v).intoArray(mx, mOff + r);
                }
            }
            for (; r < n; r++) {
                float v = x[base + r];
                mn[mOff + r] = Math.min(mn[mOff + r], v);
                mx[mOff + r] = Math.max(mx[mOff + r], v);
            }
        }
    }

    /**
     * Quantizes one column of n rows: writes the codes (unsigned bytes) and, when q is not null,
     * the dequantized values.
     */
    public static void quantize(float[] x, int xOff, int n, float[] scale, float[] zero, int sOff, float maxq,
                                byte[] codes, int cOff, float[] q, int qOff) {
        int r = 0;
        if (VECTOR) {
            for (; r <= n - L; r += L) {
                FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
                FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
                FloatVector c = codeVector(FloatVector.fromArray(F, x, xOff + r), s, z, maxq);
                storeCodes(c, codes, cOff + r);
                if (q != null) c.sub(z).mul(s).intoArray(q, qOff + r);
            }
        }
        for (; r < n; r++) {
            float s = scale[sOff + r], z = zero[sOff + r];
            float c = code(x[xOff + r], s, z, maxq);
            codes[cOff + r] = (byte) (int) c;
            if (q != null) q[qOff + r] = s * (c - z);
        }
    }

    /**
     * One GPTQ column step: quantizes column x (codes out) and writes the scaled error
     * err = (x - q(x)) / d, d being the diagonal entry of the inverse-Hessian factor.
     */
    public static void quantizeError(float[] x, int xOff, int n, float[] scale, float[] zero, int sOff, float maxq,
                                     float d, byte[] codes, int cOff, float[] err, int eOff) {
        int r = 0;
        if (VECTOR) {
            for (; r <= n - L; r += L) {
                FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
                FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
                FloatVector xv = FloatVector.fromArray(F, x, xOff + r);
                FloatVector c = codeVector(xv, s, z, maxq);
                storeCodes(c, codes, cOff + r);
                xv.sub(c.sub(z).mul(s)).div(d).intoArray(err, eOff + r);
            }
        }
        for (; r < n; r++) {
            float s = scale[sOff + r], z = zero[sOff + r];
            float xv = x[xOff + r];
            float c = code(xv, s, z, maxq);
            codes[cOff + r] = (byte) (int) c;
            err[eOff + r] = (xv - s * (c - z)) / d;
        }
    }

    /**
     * Rank-one update of {@code count} columns: y[yOff + j*ld + r] -= u[uOff + j] * e[eOff + r]
     * for j < count, r < n (GPTQ's error feedback inside a block).
     */
    public static void rank1Sub(float[] e, int eOff, int n, float[] u, int uOff, int count,
                                float[] y, int yOff, int ld) {
        int r = 0;
        if (VECTOR) {
            // Two vectors of e per pass, each kept in a register across all count columns.
            for (; r <= n - 2 * L; r += 2 * L) {
                FloatVector e0 = FloatVector.fromArray(F, e, eOff + r);
                FloatVector e1 = FloatVector.fromArray(F, e, eOff + r + L);
                for (int j = 0; j < count; j++) {
                    FloatVector nu = FloatVector.broadcast(F, -u[uOff + j]);
                    int p = yOff + j * ld + r;
                    e0.fma(nu, FloatVector.fromArray(F, y, p)).intoArray(y, p);
                    e1.fma(nu, FloatVector.fromArray(F, y, p + L)).intoArray(y, p + L);
                }
            }
            for (; r <= n - L; r += L) {
                FloatVector e0 = FloatVector.fromArray(F, e, eOff + r);
                for (int j = 0; j < count; j++) {
                    int p = yOff + j * ld + r;
                    e0.fma(FloatVector.broadcast(F, -u[uOff + j]), FloatVector.fromArray(F, y, p)).intoArray(y, p);
                }
            }
            for (int j = 0; j < count && r < n; j++) {
                float nu = -u[uOff + j];
                int p = yOff + j * ld;
                for (int rr = r; rr < n; rr++) y[p + rr] = Math.fma(e[eOff + rr], nu, y[p + rr]);
            }
            return;
        }
        for (int j = 0; j < count; j++) {
            float uj = u[uOff + j];
            int p = yOff + j * ld;
            for (int rr = 0; rr < n; rr++) y[p + rr] -= uj * e[eOff + rr];
        }
    }

    /**
     * Adds to acc[aOff + r] the clipping norm of the quantization error of row r over {@code count}
     * columns: sum_c |q(x[c, r]) - x[c, r]|^norm (norm 2 is computed as a square).
     */
    public static void gridError(float[] x, int off, int ld, int n, int count,
                                 float[] scale, float[] zero, int sOff, float maxq, float norm,
                                 float[] acc, int aOff) {
        boolean square = norm == 2f;
        int r = 0;
        if (VECTOR) {
            for (; r <= n - L; r += L) {
                FloatVector s = FloatVector.fromArray(F, scale, sOff + r);
                FloatVector z = FloatVector.fromArray(F, zero, sOff + r);
                FloatVector sum = FloatVector.zero(F);
                for (int c = 0; c < count; c++) {
                    FloatVector xv = FloatVector.fromArray(F, x, off + c * ld + r);
                    FloatVector d = codeVector(xv, s, z, maxq).sub(z).mul(s).sub(xv).abs();
                    sum = sum.add(square ? d.mul(d) : d.lanewise(VectorOperators.POW, norm));
                }
                FloatVector.fromArray(F, acc, aOff + r).add(sum).intoArray(acc, aOff + r);
            }
        }
        for (; r < n; r++) {
            float s = scale[sOff + r], z = zero[sOff + r];
            float sum = 0f;
            for (int c = 0; c < count; c++) {
                float xv = x[off + c * ld + r];
                float d = Math.abs(quantize(xv, s, z, maxq) - xv);
                sum += square ? d * d : (float) Math.pow(d, norm);
            }
            acc[aOff + r] += sum;
        }
    }

    /** Dot product of two float runs, accumulated in double (for traces of large products). */
    public static double dot(float[] a, int aOff, float[] b, int bOff, int n) {
        double total = 0;
        int r = 0;
        if (VECTOR) {
            // float partial sums over short stretches, folded into double so long rows keep precision
            final int stretch = 64 * L;
            while (r <= n - L) {
                int end = Math.min(n - L, r + stretch);
                FloatVector sum = FloatVector.zero(F);
                for (; r <= end; r += L) {
                    sum = FloatVector.fromArray(F, a, aOff + r).fma(FloatVector.fromArray(F, b, bOff + r), sum);
                }
                total += sum.reduceLanes(VectorOperators.ADD);
            }
        }
        for (; r < n; r++) total += (double) a[aOff + r] * b[bOff + r];
        return total;
    }

    /**
     * Dequantizes a row-major [rows, cols] code matrix: out[r*cols + c] =
     * scales[g*rows + r] * (codes[r*cols + c] - zeros[g*rows + r]) with g = gIdx[c].
     */
    public static void dequantize(byte[] codes, float[] scales, int[] zeros, int[] gIdx, int rows, int cols, float[] out) {
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            for (int c = 0; c < cols; c++) {
                int g = gIdx[c] * rows + r;
                out[base + c] = scales[g] * ((codes[base + c] & 0xff) - zeros[g]);
            }
        }
    }

    /** The transpose of a row-major [rows, cols] matrix, as a new row-major [cols, rows] array. */
    public static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[a.length];
        final int tile = 32; // both sides of a 32 x 32 tile stay in cache lines
        for (int r0 = 0; r0 < rows; r0 += tile) {
            int r1 = Math.min(rows, r0 + tile);
            for (int c0 = 0; c0 < cols; c0 += tile) {
                int c1 = Math.min(cols, c0 + tile);
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) t[c * rows + r] = a[r * cols + c];
                }
            }
        }
        return t;
    }

    /**
     * Codes held by (permuted) column, codesT[i * rows + r], back to row-major original order:
     * codes[r * cols + perm[i]] = codesT[i * rows + r].
     */
    public static void scatterCodes(byte[] codesT, int[] perm, int rows, int cols, byte[] codes) {
        final int tile = 64;
        for (int i0 = 0; i0 < cols; i0 += tile) {
            int i1 = Math.min(cols, i0 + tile);
            for (int r0 = 0; r0 < rows; r0 += tile) {
                int r1 = Math.min(rows, r0 + tile);
                for (int i = i0; i < i1; i++) {
                    int src = i * rows, dst = perm[i];
                    for (int r = r0; r < r1; r++) codes[r * cols + dst] = codesT[src + r];
                }
            }
        }
    }

    private static FloatVector codeVector(FloatVector x, FloatVector s, FloatVector z, float maxq) {
        FloatVector v = x.div(s).max(-RANGE).min(RANGE);
        v = v.add(ROUND_MAGIC).sub(ROUND_MAGIC); // rint, half to even
        return v.add(z).max(0f).min(maxq);
    }

    private static void storeCodes(FloatVector c, byte[] codes, int off) {
        // float -> byte follows Java's (byte) (int) cast: codes up to 255 wrap into the signed byte
        // and read back with & 0xff. Byte vectors are at least 64 bits, so 4-lane floats store by lane.
        if (BYTES != null) {
            ((ByteVector) c.convertShape(VectorOperators.F2B, BYTES, 0)).intoArray(codes, off);
        } else {
            for (int i = 0; i < L; i++) codes[off + i] = (byte) (int) c.lane(i);
        }
    }

    /** Byte species with as many lanes as F, or null when that would be narrower than 64 bits. */
    private static final VectorSpecies<Byte> BYTES =
            L >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;
}
