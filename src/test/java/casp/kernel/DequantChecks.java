package casp.kernel;

import java.util.SplittableRandom;

/**
 * Checks of the dequantizing products ({@link QuantizedMatrix#matvec}, {@link QuantizedMatrix#matmul})
 * against the float product of the dequantized matrix, for {@link VectorWidths} to run at every
 * vector width: each width takes other kernels (16 lanes the 8-slot segment and 2-bit denormal
 * kernels, 8 lanes the two-vector block kernel, 4 lanes and scalar the generic ones).
 */
public final class DequantChecks {
    private DequantChecks() {}

    static final String[] ALL = {"matvecAllWidthsAndShapes", "matmulFewAndManyTokens"};

    public static void matvecAllWidthsAndShapes() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int rows : new int[] {1, 5, 8, 33}) {
                for (int cols : new int[] {16, 33, 128, 256, 384}) {
                    for (int gs : new int[] {0, 16, 128}) {
                        QuantizedMatrix q = QuantizedMatrix.random(rows, cols, bits, gs, rows * 1000L + cols * 10L + bits + gs);
                        float[] w = q.dequantize();
                        float[] x = vector(cols + 2, rows + cols);
                        float[] y = new float[rows + 1];
                        q.matvec(x, 2, y, 1);
                        compare(w, rows, cols, x, 2, 1, y, 1, bits + "b " + rows + "x" + cols + " g" + gs);
                    }
                }
            }
        }
    }

    public static void matmulFewAndManyTokens() {
        for (int bits : new int[] {2, 4}) {
            for (int tokens : new int[] {3, 9}) {
                int rows = 37, cols = 272;
                QuantizedMatrix q = QuantizedMatrix.random(rows, cols, bits, 16, tokens * 31L + bits);
                float[] w = q.dequantize();
                float[] x = vector(tokens * cols, tokens);
                float[] y = new float[tokens * rows];
                q.matmul(x, 0, tokens, y, 0);
                compare(w, rows, cols, x, 0, tokens, y, 0, bits + "b matmul tokens=" + tokens);
            }
        }
        // Past one 128 x 1024 tile: the second column tile starts inside a group (80, 48) and, at
        // 3 bits (10 slots per word), inside a block; 131 rows leave a 3-row last tile.
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (int gs : new int[] {80, 48}) {
                int rows = 131, cols = 2096, tokens = 9;
                QuantizedMatrix q = QuantizedMatrix.random(rows, cols, bits, gs, bits * 100L + gs);
                float[] w = q.dequantize();
                float[] x = vector(tokens * cols, gs);
                float[] y = new float[tokens * rows];
                q.matmul(x, 0, tokens, y, 0);
                compare(w, rows, cols, x, 0, tokens, y, 0, bits + "b g" + gs + " matmul " + rows + "x" + cols);
            }
        }
    }

    /** y (tokens x rows from yOff) against the double product, tolerance a float sum of |w||x|. */
    private static void compare(float[] w, int rows, int cols, float[] x, int xOff, int tokens, float[] y, int yOff, String what) {
        for (int t = 0; t < tokens; t++) {
            for (int r = 0; r < rows; r++) {
                double s = 0, mag = 0;
                for (int c = 0; c < cols; c++) {
                    double p = (double) w[r * cols + c] * x[xOff + t * cols + c];
                    s += p;
                    mag += Math.abs(p);
                }
                double got = y[yOff + t * rows + r];
                if (!(Math.abs(got - s) <= 1e-5 * mag + 1e-6)) {
                    throw new AssertionError(what + " token " + t + " row " + r + ": expected " + s + ", got " + got);
                }
            }
        }
    }

    private static float[] vector(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
        return x;
    }
}
