package casp.quant.aqlm;

import casp.kernel.Fp16;
import casp.quant.aqlm.AqlmTensors;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AqlmLinear's runtime paths (decoded dense weight, lookup-table mat-vec, codebook mat-vec) against W x. */
class AqlmLinearTest {

    private static AqlmTensors random(int rows, int in, int m, int b, long seed) {
        return random(rows, in, m, b, 8, seed);
    }

    private static AqlmTensors random(int rows, int in, int m, int b, int gsize, long seed) {
        Random rnd = new Random(seed);
        int groups = (in + gsize - 1) / gsize, k = 1 << b;
        int[] codes = new int[rows * groups * m];
        for (int i = 0; i < codes.length; i++) codes[i] = rnd.nextInt(k);
        float[] cb = new float[m * k * gsize], s = new float[rows];
        for (int i = 0; i < cb.length; i++) cb[i] = Fp16.toFloat(Fp16.fromFloat((float) rnd.nextGaussian()));
        for (int i = 0; i < rows; i++) s[i] = Fp16.toFloat(Fp16.fromFloat((float) (0.1 + rnd.nextDouble())));
        return new AqlmTensors(rows, groups, m, b, codes, cb, s, gsize);
    }

    @Test
    void everyPathComputesWxPlusBias() {
        for (int gsize : new int[]{8, 16}) for (int in : new int[]{5, 16, 43}) check(random(37, in, 2, 3, gsize, in), in);
        check(random(17, 33, 1, 16, 8, 4), 33); // 1x16: 65536 codewords
    }

    private static void check(AqlmTensors t, int in) {
        Random rnd = new Random(9);
        {
            int out = t.rows(), rows = 3;
            float[] bias = new float[out];
            for (int i = 0; i < out; i++) bias[i] = (float) rnd.nextGaussian();
            float[] w = AqlmLinear.decode(t, in);
            float[] x = new float[rows * in + 1];
            for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
            for (AqlmLinear.Mode mode : AqlmLinear.Mode.values()) {
                if (mode == AqlmLinear.Mode.LOOKUP && t.inGroup() != 8) continue;
                AqlmLinear l = AqlmLinear.of(t, in, bias, mode);
                boolean lookup = mode == AqlmLinear.Mode.LOOKUP || mode == AqlmLinear.Mode.AUTO && t.inGroup() == 8 && out >= 4 * t.codebookSize();
                assertEquals(lookup, l.usesLookup(), mode.toString());
                assertEquals(mode == AqlmLinear.Mode.CODEBOOK, l.usesCodebook(), mode.toString());
                org.junit.jupiter.api.Assertions.assertArrayEquals(w, l.dequantize(), 0f, mode.toString());
                for (int n : new int[]{1, rows}) {
                    float[] y = new float[n * out + 2];
                    l.forward(x, 1, y, 2, n);
                    for (int r = 0; r < n; r++) {
                        for (int o = 0; o < out; o++) {
                            double want = bias[o], mag = Math.abs(bias[o]);
                            for (int c = 0; c < in; c++) {
                                want += (double) w[o * in + c] * x[1 + r * in + c];
                                mag += Math.abs((double) w[o * in + c] * x[1 + r * in + c]);
                            }
                            assertEquals(want, y[2 + r * out + o], 1e-5 * (1 + mag), mode + " in=" + in + " rows=" + n);
                        }
                    }
                }
            }
        }
    }

    @Test
    void smallLayersRunDenseLargeOnesOnTheLookupTable() {
        assertFalse(AqlmLinear.of(random(64, 64, 2, 8, 1), 64, null).usesLookup(), "stories260K-sized: 64 rows, 256 codewords");
        assertTrue(AqlmLinear.of(random(64, 16, 2, 4, 2), 16, null).usesLookup(), "64 rows, 16 codewords");
        AqlmLinear oneBy16 = AqlmLinear.of(random(512, 2056, 1, 16, 3), 2056, null);
        assertTrue(oneBy16.usesCodebook() && !oneBy16.usesLookup(), "1x16 with more than 2^20 weights keeps its codes");
    }
}
