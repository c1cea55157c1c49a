package casp.quant.gptq;

import casp.kernel.QuantOps;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class QuantGridTest {

    /** A group of `count` columns of n rows, transposed ([count, n]), with varied row ranges. */
    private static float[] group(int n, int count, long seed) {
        Random rnd = new Random(seed);
        float[] x = new float[n * count];
        for (int r = 0; r < n; r++) {
            double spread = Math.exp(2 * rnd.nextGaussian()) * 0.01;
            double shift = r % 5 == 0 ? spread * 3 : 0; // some rows all positive, some mostly
            for (int c = 0; c < count; c++) x[c * n + r] = (float) (rnd.nextGaussian() * spread + shift);
        }
        if (n > 3) for (int c = 0; c < count; c++) x[c * n + 3] = 0f; // a row of zeros
        return x;
    }

    @Test
    void gridPointsRoundTripAndCodesStayInRange() {
        int n = 37, count = 29;
        for (int bits : new int[] {2, 3, 4, 8}) {
            for (boolean sym : new boolean[] {false, true}) {
                QuantGrid grid = new QuantGrid(bits, sym, false);
                float[] x = group(n, count, bits * 10 + (sym ? 1 : 0));
                float[] scale = new float[n], zero = new float[n];
                grid.findParams(x, 0, n, n, count, scale, zero, 0);
                for (int r = 0; r < n; r++) {
                    float s = scale[r], z = zero[r];
                    assertTrue(s > 0 && Float.isFinite(s));
                    assertEquals(s, DType.f16ToFloat(DType.floatToF16(s)), "scale is fp16");
                    assertEquals(Math.rint(z), z);
                    if (sym) assertEquals(1 << (bits - 1), z);
                    else assertTrue(z >= 1 && z <= grid.maxq, "zero " + z);
                    // every grid point is a fixed point with its own code
                    for (int k = 0; k <= grid.maxq; k++) {
                        float p = s * (k - z);
                        assertEquals(k, QuantOps.code(p, s, z, grid.maxq));
                        assertEquals(p, grid.quantize(p, s, z));
                        assertEquals(p, grid.quantize(grid.quantize(p, s, z), s, z));
                    }
                    // values inside the covered range are within half a step
                    for (int c = 0; c < count; c++) {
                        float v = x[c * n + r];
                        float q = grid.quantize(v, s, z);
                        assertTrue(Math.abs(q - v) <= s * 0.5f * (1 + 1e-5f),
                                "bits " + bits + " sym " + sym + " row " + r + ": " + v + " -> " + q + " scale " + s);
                        double code = (q / s) + z;
                        assertEquals(Math.rint(code), code, 1e-3);
                        assertTrue(code > -0.5 && code < grid.maxq + 0.5);
                    }
                }
            }
        }
    }

    @Test
    void asymmetricGridCoversMinAndMax() {
        QuantGrid grid = new QuantGrid(2, false, false);
        float[] x = {-0.3f, 0.1f, 0.6f, 0.2f}; // one row, four columns
        float[] s = new float[1], z = new float[1];
        grid.findParams(x, 0, 1, 1, 4, s, z, 0);
        // range [-0.3, 0.6] / 3 = 0.3, rounded up to fp16 (0.30005), zero = rint(0.3/0.30005) = 1
        assertEquals(QuantGrid.roundScale(0.3f), s[0]);
        assertTrue(s[0] >= 0.3f && s[0] < 0.3f * (1 + 0x1p-10f));
        assertEquals(1f, z[0]);
        // all positive: the zero >= 1 rule stretches the grid to still reach the max
        float[] pos = {0.1f, 0.6f};
        grid.findParams(pos, 0, 1, 1, 2, s, z, 0);
        assertEquals(1f, z[0]);
        assertEquals(0.6f, grid.quantize(0.6f, s[0], z[0]), 1e-3f);
    }

    @Test
    void mseClippingIsNeverWorseInTheClippingNorm() {
        int n = 64, count = 128;
        for (int bits : new int[] {2, 3, 4}) {
            for (boolean sym : new boolean[] {false, true}) {
                float[] x = group(n, count, 100 + bits);
                // heavy tails so that clipping pays off on some rows
                Random rnd = new Random(bits);
                for (int i = 0; i < 40; i++) x[rnd.nextInt(x.length)] *= 6;
                float[] s0 = new float[n], z0 = new float[n], s1 = new float[n], z1 = new float[n];
                new QuantGrid(bits, sym, false).findParams(x, 0, n, n, count, s0, z0, 0);
                QuantGrid clip = new QuantGrid(bits, sym, true);
                clip.findParams(x, 0, n, n, count, s1, z1, 0);
                int shrunk = 0;
                for (int r = 0; r < n; r++) {
                    double e0 = 0, e1 = 0;
                    for (int c = 0; c < count; c++) {
                        float v = x[c * n + r];
                        e0 += Math.pow(Math.abs(clip.quantize(v, s0[r], z0[r]) - v), QuantGrid.CLIP_NORM);
                        e1 += Math.pow(Math.abs(clip.quantize(v, s1[r], z1[r]) - v), QuantGrid.CLIP_NORM);
                    }
                    assertTrue(e1 <= e0 * (1 + 1e-5), "row " + r + ": clipped " + e1 + " > plain " + e0);
                    if (s1[r] < s0[r]) shrunk++;
                }
                assertTrue(shrunk > 0, "bits " + bits + ": clipping never chose a smaller range");
            }
        }
    }

    @Test
    void roundScaleStaysInTheFp16Range() {
        assertEquals(0x1p-24f, QuantGrid.roundScale(0f));
        assertEquals(0x1p-24f, QuantGrid.roundScale(1e-12f));
        assertEquals(65504f, QuantGrid.roundScale(1e9f));
        assertEquals(0.5f, QuantGrid.roundScale(0.5f));
        assertEquals(1f + 0x1p-9f, QuantGrid.roundScale(1f + 0x1p-10f + 0x1p-13f)); // rounds up
        assertEquals(1f + 0x1p-10f, QuantGrid.roundScale(1f + 0x1p-10f));          // exact stays
        assertEquals(0x1p-23f, QuantGrid.roundScale(0x1p-24f + 0x1p-30f));         // subnormal, up
        for (float s = 1e-7f; s < 6e4f; s *= 1.37f) {
            float r = QuantGrid.roundScale(s);
            assertTrue(r >= s && r <= s * (1 + 0x1p-10f) + 0x1p-24f, s + " -> " + r);
        }
    }

    @Test
    void rejectsUnsupportedBits() {
        for (int b : new int[] {0, 1, 5, 6, 7, 9, 16}) {
            assertThrows(IllegalArgumentException.class, () -> new QuantGrid(b, false, false));
        }
    }
}
