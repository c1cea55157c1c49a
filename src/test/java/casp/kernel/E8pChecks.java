package casp.kernel;

import java.util.SplittableRandom;

/**
 * The E8P12 kernels against naive references: plain static methods throwing AssertionError, so
 * that {@link E8pWidthTest} can run them at every vector width (scalar, 128, 256, 512 bits).
 */
public final class E8pChecks {
    private E8pChecks() {}

    static final String[] ALL = {"encodeIsNearest", "multiplyMatchesDequantizedWeight"};

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what + " (vector bits " + VectorSupport.bits() + ")");
    }

    /** encode's codeword is as near as the nearest of all 65536 (brute force). */
    public static void encodeIsNearest() {
        float[] cb = E8p.codebook();
        SplittableRandom r = new SplittableRandom(17);
        E8p.Scratch s = new E8p.Scratch();
        float[] y = new float[8], q = new float[8];
        for (int t = 0; t < 200; t++) {
            for (int i = 0; i < 8; i++) y[i] = (float) ((r.nextDouble() * 2 - 1) * (1 + t % 4));
            E8p.encode(y, 0, s, q, 0);
            double got = 0, best = Double.POSITIVE_INFINITY;
            for (int i = 0; i < 8; i++) got += (y[i] - (double) q[i]) * (y[i] - (double) q[i]);
            for (int c = 0; c < E8p.CODES; c++) {
                double d = 0;
                for (int i = 0; i < 8; i++) {
                    double e = y[i] - (double) cb[c * 8 + i];
                    d += e * e;
                }
                best = Math.min(best, d);
            }
            check(got <= best + 1e-5 * (1 + best), "target " + t + ": encoded at distance " + got + ", nearest " + best);
        }
    }

    /** multiply (one row and a batch) equals the product with the dequantized weight, padded shapes included. */
    public static void multiplyMatchesDequantizedWeight() {
        SplittableRandom r = new SplittableRandom(3);
        for (int[] shape : new int[][]{{20, 172}, {64, 64}, {172, 64}, {3, 5}, {40, 300}}) {
            int rows = shape[0], cols = shape[1];
            int m = Hadamard.paddedSize(rows, 1), n = Hadamard.paddedSize(cols, 8);
            short[] codes = new short[m * n / 8];
            for (int i = 0; i < codes.length; i++) codes[i] = (short) r.nextInt(1 << 16);
            byte[] sIn = new byte[n], sOut = new byte[m];
            for (int i = 0; i < n; i++) sIn[i] = (byte) (r.nextBoolean() ? 1 : -1);
            for (int i = 0; i < m; i++) sOut[i] = (byte) (r.nextBoolean() ? 1 : -1);
            E8pResidual res = E8pResidual.values()[Math.floorMod(rows + cols, 3)];
            short[] codes2 = res == E8pResidual.NONE ? null : new short[codes.length];
            for (int i = 0; codes2 != null && i < codes2.length; i++) codes2[i] = (short) r.nextInt(1 << res.codeBits);
            E8pMatrix w = new E8pMatrix(rows, cols, m, n, codes, sIn, sOut, 0.03f, res, codes2);
            float[] wd = w.dequantize();
            E8pMatrix.Scratch s = new E8pMatrix.Scratch();
            for (int batch : new int[]{1, 5, 1}) {
                float[] x = KernelChecks.randomF(r, 2 + batch * cols);
                float[] y = new float[1 + batch * rows];
                w.multiply(x, 2, batch, y, 1, s);
                for (int b = 0; b < batch; b++) {
                    for (int o = 0; o < rows; o++) {
                        double e = 0, mag = 0;
                        for (int i = 0; i < cols; i++) {
                            e += (double) wd[o * cols + i] * x[2 + b * cols + i];
                            mag += Math.abs((double) wd[o * cols + i] * x[2 + b * cols + i]);
                        }
                        check(Math.abs(e - y[1 + b * rows + o]) <= 1e-5 * (mag + 1e-3),
                                rows + "x" + cols + " " + res + " batch " + batch + " row " + b + " out " + o + ": " + y[1 + b * rows + o] + " vs " + e);
                    }
                }
                check(y[0] == 0, "wrote before yOff");
            }
        }
    }
}
