package casp.kernel;

/**
 * Loops of scalar (min/max grid) quantization: what RTN and GPTQ spend their non-GEMM time on. On
 * the Vector API when {@link VectorSupport} enables it ({@link QuantOpsSimd}), plain loops otherwise.
 *
 * <p>Every operation works on "columns": runs of {@code n} contiguous floats (one input column of a
 * weight matrix stored transposed, i.e. {@code x[off + c * ld + r]} is row r of column c), with
 * per-row quantization parameters {@code scale[sOff + r]}, {@code zero[sOff + r]}. Rows are
 * independent, so all loops run along rows, which is what the vectors want.
 *
 * <p>The quantizer is q(x) = scale * (clamp(rint(x / scale) + zero, 0, maxq) - zero) with rint
 * rounding half to even (as torch.round). The vector path rounds with the 1.5 * 2^23 trick after
 * clamping |x / scale| to {@link #RANGE}, which gives exactly Math.rint's result there, so both
 * paths produce the same codes. (They may differ in the last bit of a GPTQ error update: the
 * vector path uses fused multiply-adds.)
 */
public final class QuantOps {
    private QuantOps() {}

    private static final boolean SIMD = VectorSupport.enabled();
    /** |x / scale| is clamped to this before rounding (below 2^22, far beyond any maxq). */
    static final float RANGE = 4_000_000f;

    /** The quantized value of one x: scale * (clamp(rint(x/scale) + zero, 0, maxq) - zero). */
    public static float quantize(float x, float scale, float zero, float maxq) {
        return scale * (code(x, scale, zero, maxq) - zero);
    }

    /** The integer code of one x, as a float in [0, maxq]. */
    public static float code(float x, float scale, float zero, float maxq) {
        float v = Math.max(-RANGE, Math.min(RANGE, x / scale));
        return Math.max(0f, Math.min(maxq, (float) Math.rint(v) + zero));
    }

    /**
     * Per-row running min and max over {@code count} columns: mn[r] = min(mn[r], x[off + c*ld + r]).
     * The caller initialises mn and mx (GPTQ's grid starts both at 0, so the range includes 0).
     */
    public static void columnMinMax(float[] x, int off, int ld, int n, int count,
                                    float[] mn, float[] mx, int mOff) {
        if (SIMD) {
            QuantOpsSimd.columnMinMax(x, off, ld, n, count, mn, mx, mOff);
            return;
        }
        for (int c = 0; c < count; c++) {
            int base = off + c * ld;
            for (int r = 0; r < n; r++) {
                float v = x[base + r];
                mn[mOff + r] = Math.min(mn[mOff + r], v);
                mx[mOff + r] = Math.max(mx[mOff + r], v);
            }
        }
    }

    /**
     * Quantizes one column of n rows: writes the codes (unsigned bytes, read with {@code & 0xff})
     * and, when q is not null, the dequantized values.
     */
    public static void quantize(float[] x, int xOff, int n, float[] scale, float[] zero, int sOff, float maxq,
                                byte[] codes, int cOff, float[] q, int qOff) {
        if (SIMD) {
            QuantOpsSimd.quantize(x, xOff, n, scale, zero, sOff, maxq, codes, cOff, q, qOff);
            return;
        }
        quantizeTail(x, xOff, 0, n, scale, zero, sOff, maxq, codes, cOff, q, qOff);
    }

    static void quantizeTail(float[] x, int xOff, int from, int n, float[] scale, float[] zero, int sOff, float maxq,
                             byte[] codes, int cOff, float[] q, int qOff) {
        for (int r = from; r < n; r++) {
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
        if (SIMD) {
            QuantOpsSimd.quantizeError(x, xOff, n, scale, zero, sOff, maxq, d, codes, cOff, err, eOff);
            return;
        }
        quantizeErrorTail(x, xOff, 0, n, scale, zero, sOff, maxq, d, codes, cOff, err, eOff);
    }

    static void quantizeErrorTail(float[] x, int xOff, int from, int n, float[] scale, float[] zero, int sOff,
                                  float maxq, float d, byte[] codes, int cOff, float[] err, int eOff) {
        for (int r = from; r < n; r++) {
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
        if (SIMD) {
            QuantOpsSimd.rank1Sub(e, eOff, n, u, uOff, count, y, yOff, ld);
            return;
        }
        for (int j = 0; j < count; j++) {
            float uj = u[uOff + j];
            int p = yOff + j * ld;
            for (int r = 0; r < n; r++) y[p + r] -= uj * e[eOff + r];
        }
    }

    /**
     * Adds to acc[aOff + r] the clipping norm of the quantization error of row r over {@code count}
     * columns: sum_c |q(x[c, r]) - x[c, r]|^norm (norm 2 is computed as a square).
     */
    public static void gridError(float[] x, int off, int ld, int n, int count,
                                 float[] scale, float[] zero, int sOff, float maxq, float norm,
                                 float[] acc, int aOff) {
        if (SIMD) {
            QuantOpsSimd.gridError(x, off, ld, n, count, scale, zero, sOff, maxq, norm, acc, aOff);
            return;
        }
        gridErrorTail(x, off, ld, 0, n, count, scale, zero, sOff, maxq, norm, acc, aOff);
    }

    static void gridErrorTail(float[] x, int off, int ld, int from, int n, int count,
                              float[] scale, float[] zero, int sOff, float maxq, float norm,
                              float[] acc, int aOff) {
        boolean square = norm == 2f;
        for (int r = from; r < n; r++) {
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
        if (SIMD) return QuantOpsSimd.dot(a, aOff, b, bOff, n);
        double total = 0;
        for (int r = 0; r < n; r++) total += (double) a[aOff + r] * b[bOff + r];
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
}
