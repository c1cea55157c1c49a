package casp.kernel;

/**
 * The AQLM mat-vec that reads each codeword straight from the codebook, for layers whose codebooks
 * are large against their row count (1x16: one codebook of 65536 entries): per row and group,
 * y[r] += scale[r] * sum_m dot(C_m[code], x[group]). W is never formed and no per-input table is
 * built (a 65536-entry table per group of a 4096-wide input would cost more than the product);
 * memory is the 16-bit codes plus the float32 codebooks.
 *
 * <p>Layout: codes [rows, groups, M] row-major as unsigned 16-bit values (the AQLM order);
 * codebooks [M, K, G] float32 with G inputs per group (AQLM's in_group_size: 8, or 16 in some
 * published checkpoints); x holds groups * G inputs (pad a shorter input with zeros).
 */
public final class AqlmCodebookMatvec {
    private AqlmCodebookMatvec() {}

    private static final boolean SIMD = VectorSupport.enabled() && AqlmCodebookSimd.usable();

    /**
     * y[yOff + r] = scales[r] * sum over groups g and codebooks b of
     * dot(codebooks[(b * k + codes[(r * groups + g) * m + b]) * gsize ...], x[xOff + g * gsize ...]).
     */
    public static void matvec(char[] codes, int rows, int groups, int m, float[] codebooks, int k, int gsize,
                              float[] scales, float[] x, int xOff, float[] y, int yOff) {
        if (codes.length < (long) rows * groups * m) throw new IllegalArgumentException("codes need " + rows + " x " + groups + " x " + m);
        if (codebooks.length < (long) m * k * gsize) throw new IllegalArgumentException("codebooks need " + m + " x " + k + " x " + gsize);
        if (xOff < 0 || xOff + (long) groups * gsize > x.length) throw new IllegalArgumentException("x is shorter than groups * " + gsize);
        if (yOff < 0 || yOff + rows > y.length) throw new IllegalArgumentException("y is shorter than rows=" + rows);
        boolean simd = SIMD && gsize % AqlmCodebookSimd.lanes() == 0;
        int tasks = (long) rows * groups * m < (1 << 14) ? 1 : (int) Math.min(rows, Parallel.threads() * 8L);
        Parallel.forRange(tasks, t -> {
            int r0 = (int) ((long) rows * t / tasks), r1 = (int) ((long) rows * (t + 1) / tasks);
            if (simd) AqlmCodebookSimd.rows(codes, r0, r1, groups, m, codebooks, k, gsize, scales, x, xOff, y, yOff);
            else rowsScalar(codes, r0, r1, groups, m, codebooks, k, gsize, scales, x, xOff, y, yOff);
        });
    }

    static void rowsScalar(char[] codes, int r0, int r1, int groups, int m, float[] codebooks, int k, int gsize,
                           float[] scales, float[] x, int xOff, float[] y, int yOff) {
        for (int r = r0; r < r1; r++) {
            float s = 0;
            int base = r * groups * m;
            for (int g = 0; g < groups; g++) {
                int xg = xOff + g * gsize;
                for (int b = 0; b < m; b++) {
                    int cw = (b * k + codes[base + g * m + b]) * gsize;
                    for (int i = 0; i < gsize; i++) s += codebooks[cw + i] * x[xg + i];
                }
            }
            y[yOff + r] = scales[r] * s;
        }
    }

    /** W [rows, cols] decoded from the same layout (the last group's coordinates past cols dropped). */
    public static float[] decode(char[] codes, int rows, int groups, int m, float[] codebooks, int k, int gsize,
                                 float[] scales, int cols) {
        float[] w = new float[Math.multiplyExact(rows, cols)];
        float[] row = new float[groups * gsize];
        for (int r = 0; r < rows; r++) {
            java.util.Arrays.fill(row, 0f);
            int base = r * groups * m;
            for (int g = 0; g < groups; g++) {
                for (int b = 0; b < m; b++) {
                    int cw = (b * k + codes[base + g * m + b]) * gsize;
                    for (int i = 0; i < gsize; i++) row[g * gsize + i] += codebooks[cw + i];
                }
            }
            for (int c = 0; c < cols; c++) w[r * cols + c] = scales[r] * row[c];
        }
        return w;
    }
}
