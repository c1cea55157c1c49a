package casp.kernel;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * QuantOps against plain scalar loops at lengths that are not multiples of a vector. Public static
 * checks, run at every vector width by {@link QuantOpsWidthTest}.
 */
public final class QuantOpsChecks {
    public static final String[] ALL = {"codeRoundsHalfToEvenLikeRint", "quantizeMatchesScalarIncludingTies",
            "quantizeErrorAndRank1Update", "minMaxGridErrorAndDot", "transposeAndScatterCodes"};

    static final int[] LENGTHS = {1, 3, 7, 16, 17, 33, 64, 129};

    private static float[] randoms(int n, long seed, double sd) {
        Random rnd = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * sd);
        return x;
    }

    public static void codeRoundsHalfToEvenLikeRint() {
        // x / scale exactly k + 0.5: ties go to the even integer, as torch.round
        float s = 0.25f, z = 4f;
        for (int k = -4; k < 4; k++) {
            float x = (k + 0.5f) * s;
            float expect = (float) Math.max(0, Math.min(7, Math.rint(k + 0.5) + z));
            assertEquals(expect, QuantOps.code(x, s, z, 7f), "k=" + k);
        }
        assertEquals(0f, QuantOps.code(-1e30f, 1e-8f, 2f, 3f));
        assertEquals(3f, QuantOps.code(1e30f, 1e-8f, 2f, 3f));
    }

    public static void quantizeMatchesScalarIncludingTies() {
        for (int n : LENGTHS) {
            float[] x = randoms(n + 5, n, 1);
            float[] scale = new float[n + 5], zero = new float[n + 5];
            Random rnd = new Random(n);
            for (int i = 0; i < scale.length; i++) {
                scale[i] = (float) Math.scalb(1.0, -rnd.nextInt(6)); // powers of two: exact halves possible
                zero[i] = rnd.nextInt(256);
                if (i % 3 == 0) x[i] = (rnd.nextInt(40) - 20 + 0.5f) * scale[i]; // exact ties
            }
            byte[] codes = new byte[n + 2];
            float[] q = new float[n + 2];
            QuantOps.quantize(x, 2, n, scale, zero, 3, 255f, codes, 1, q, 2);
            for (int r = 0; r < n; r++) {
                float c = QuantOps.code(x[2 + r], scale[3 + r], zero[3 + r], 255f);
                assertEquals((int) c, codes[1 + r] & 0xff, "n=" + n + " r=" + r);
                assertEquals(scale[3 + r] * (c - zero[3 + r]), q[2 + r]);
            }
        }
    }

    public static void quantizeErrorAndRank1Update() {
        for (int n : LENGTHS) {
            float[] x = randoms(n, 10 + n, 0.02);
            float[] scale = new float[n], zero = new float[n];
            for (int r = 0; r < n; r++) {
                scale[r] = 0.01f + r * 1e-4f;
                zero[r] = 2;
            }
            byte[] codes = new byte[n];
            float[] err = new float[n];
            QuantOps.quantizeError(x, 0, n, scale, zero, 0, 3f, 0.7f, codes, 0, err, 0);
            for (int r = 0; r < n; r++) {
                float c = QuantOps.code(x[r], scale[r], zero[r], 3f);
                assertEquals((int) c, codes[r]);
                assertEquals((x[r] - scale[r] * (c - zero[r])) / 0.7f, err[r], 1e-7f);
            }
            int count = 5, ld = n + 3;
            float[] y = randoms(count * ld, 20 + n, 1), y0 = y.clone();
            float[] u = randoms(count + 1, 30 + n, 1);
            QuantOps.rank1Sub(err, 0, n, u, 1, count, y, 0, ld);
            for (int j = 0; j < count; j++) {
                for (int r = 0; r < ld; r++) {
                    float expect = r < n ? y0[j * ld + r] - u[1 + j] * err[r] : y0[j * ld + r];
                    assertEquals(expect, y[j * ld + r], 1e-6f, "n=" + n + " j=" + j + " r=" + r);
                }
            }
        }
    }

    public static void minMaxGridErrorAndDot() {
        for (int n : LENGTHS) {
            int count = 6, ld = n + 1;
            float[] x = randoms(count * ld, n, 1);
            float[] mn = new float[n], mx = new float[n];
            QuantOps.columnMinMax(x, 0, ld, n, count, mn, mx, 0);
            float[] scale = new float[n], zero = new float[n];
            for (int r = 0; r < n; r++) {
                float lo = 0, hi = 0;
                for (int c = 0; c < count; c++) {
                    lo = Math.min(lo, x[c * ld + r]);
                    hi = Math.max(hi, x[c * ld + r]);
                }
                assertEquals(lo, mn[r]);
                assertEquals(hi, mx[r]);
                scale[r] = (hi - lo) / 3;
                zero[r] = (float) Math.rint(-lo / scale[r]);
            }
            for (float norm : new float[] {2f, 2.4f}) {
                float[] acc = new float[n];
                QuantOps.gridError(x, 0, ld, n, count, scale, zero, 0, 3f, norm, acc, 0);
                for (int r = 0; r < n; r++) {
                    double e = 0;
                    for (int c = 0; c < count; c++) {
                        float v = x[c * ld + r];
                        e += Math.pow(Math.abs(QuantOps.quantize(v, scale[r], zero[r], 3f) - v), norm);
                    }
                    assertEquals(e, acc[r], 1e-5 * e + 1e-7, "n=" + n + " norm " + norm);
                }
            }
            float[] a = randoms(n + 2, 7 * n, 1), b = randoms(n + 1, 9 * n, 1);
            double expect = 0;
            for (int i = 0; i < n; i++) expect += (double) a[2 + i] * b[1 + i];
            assertEquals(expect, QuantOps.dot(a, 2, b, 1, n), 1e-5 * Math.sqrt(n));
        }
    }

    public static void transposeAndScatterCodes() {
        int rows = 37, cols = 70;
        float[] a = randoms(rows * cols, 1, 1);
        float[] t = QuantOps.transpose(a, rows, cols);
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) assertEquals(a[r * cols + c], t[c * rows + r]);
        int[] perm = new int[cols];
        for (int i = 0; i < cols; i++) perm[i] = (i * 31 + 5) % cols; // 31 and 70 coprime: a permutation
        byte[] ct = new byte[rows * cols];
        for (int i = 0; i < ct.length; i++) ct[i] = (byte) (i * 13);
        byte[] codes = new byte[rows * cols];
        QuantOps.scatterCodes(ct, perm, rows, cols, codes);
        for (int i = 0; i < cols; i++) for (int r = 0; r < rows; r++) assertEquals(ct[i * rows + r], codes[r * cols + perm[i]]);
    }
}
