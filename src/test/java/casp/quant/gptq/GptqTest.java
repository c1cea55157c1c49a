package casp.quant.gptq;

import casp.quant.Layers;
import casp.quant.ProxyError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class GptqTest {
    private static final java.util.Map<Integer, double[]> HESSIANS = new java.util.concurrent.ConcurrentHashMap<>();

    static Stream<Arguments> configs() {
        List<Arguments> out = new ArrayList<>();
        int[][] sizes = {{7, 33}, {17, 129}, {64, 300}};
        int[] groupSizes = {32, 96, 128, -1};
        int[] bits = {2, 3, 4, 8};
        int k = 0;
        for (int[] s : sizes) {
            for (int gs : groupSizes) {
                for (boolean act : new boolean[] {false, true}) {
                    for (boolean sym : new boolean[] {false, true}) {
                        for (boolean stat : new boolean[] {false, true}) {
                            if (gs < 0 && stat) continue; // per channel is always static
                            int b = bits[k++ % bits.length];
                            out.add(Arguments.of(s[0], s[1], new Gptq.Options(b, gs, act, stat, sym, 0.01, false, 128)));
                        }
                    }
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}x{1} {2}")
    @MethodSource("configs")
    void sameCodesAsColumnByColumnFloat64Reference(int rows, int cols, Gptq.Options o) {
        long seed = rows * 1000L + cols + o.bits();
        float[] w = Layers.weights(rows, cols, seed);
        // one H per size (it costs more to build than the tests), with one dead input
        double[] h = HESSIANS.computeIfAbsent(cols, c -> Layers.hessian(c, 2 * c, c, c / 3));
        QuantizedWeight q = new Gptq(o).quantize(w, rows, cols, h);
        assertEquals(1, q.stats().get("damp_attempts").intValue());
        assertEquals(1, q.stats().get("dead_inputs").intValue());

        GptqReference ref = new GptqReference();
        ref.check(w, rows, cols, h, o, q);
        String what = rows + "x" + cols + " " + o + ": " + ref.ties + " code ties, " + ref.paramTies
                + " parameter ties, closest tie " + ref.closestTie + "\n" + ref.log;
        assertEquals(0, ref.mismatches, what);
        assertEquals(0, ref.paramMismatches, what);
        // Ties are float32-vs-float64 rounding at a .5 boundary: a handful at most.
        assertTrue(ref.ties + ref.paramTies <= 2 + rows * cols / 2000, what);
        if (ref.ties + ref.paramTies > 0) System.out.println("GptqTest tie(s): " + what);
    }

    @Test
    void blockSizeDoesNotChangeTheResult() {
        int rows = 33, cols = 200;
        float[] w = Layers.weights(rows, cols, 5);
        double[] h = Layers.hessian(cols, 400, 6);
        for (int gs : new int[] {32, 48, -1}) {
            for (boolean stat : new boolean[] {false, true}) {
                Gptq.Options o = new Gptq.Options(3, gs, true, stat, false, 0.01, false, 128);
                QuantizedWeight a = new Gptq(o).quantize(w, rows, cols, h);
                for (int bs : new int[] {1, 7, 64, 1000}) {
                    QuantizedWeight b = new Gptq(o.withBlockSize(bs)).quantize(w, rows, cols, h);
                    int diff = 0;
                    for (int i = 0; i < a.codes.length; i++) if (a.codes[i] != b.codes[i]) diff++;
                    // Different blockings sum the same updates in a different order (float32): at
                    // most a rare tie may flip.
                    assertTrue(diff <= 2, "gs " + gs + " block " + bs + ": " + diff + " codes differ");
                }
            }
        }
    }

    @Test
    void blockEndKeepsDynamicGroupsInsideABlock() {
        assertEquals(128, Gptq.blockEnd(0, 128, 300, 32));
        assertEquals(96, Gptq.blockEnd(0, 128, 300, 96)); // group 96..191 would straddle 128
        assertEquals(192, Gptq.blockEnd(96, 224, 300, 96));
        assertEquals(300, Gptq.blockEnd(256, 300, 300, 96)); // group 288..299 ends at cols
        assertEquals(128, Gptq.blockEnd(0, 128, 300, 256)); // group starts at the block start
        assertEquals(128, Gptq.blockEnd(0, 128, 300, -1));
    }

    @Test
    void proxyErrorBelowRtnAt2To4Bits() {
        int rows = 96, cols = 256;
        double[] h = Layers.hessian(cols, 1024, 11);
        for (int seed = 0; seed < 3; seed++) {
            float[] w = Layers.weights(rows, cols, 100 + seed);
            for (int bits : new int[] {2, 3, 4}) {
                for (int gs : new int[] {64, -1}) {
                    Gptq.Options o = Gptq.Options.defaults(bits).withGroupSize(gs);
                    double gptq = ProxyError.relative(w, new Gptq(o).quantize(w, rows, cols, h).dequantize(), rows, cols, h);
                    double rtn = ProxyError.relative(w, new Rtn(bits, gs, false, false).quantize(w, rows, cols, null).dequantize(), rows, cols, h);
                    String what = "bits " + bits + " group " + gs + " seed " + seed + ": gptq " + gptq + " rtn " + rtn;
                    assertTrue(gptq < rtn, what);
                    assertTrue(gptq > 0, what);
                    // and GPTQ without act-order also beats RTN
                    double plain = ProxyError.relative(w, new Gptq(o.withActOrder(false)).quantize(w, rows, cols, h).dequantize(), rows, cols, h);
                    assertTrue(plain < rtn, what + " plain " + plain);
                }
            }
        }
    }

    @Test
    void identityHessianMakesGptqRoundToNearest() {
        // With H = I there is no error feedback (U is diagonal): GPTQ must equal RTN exactly.
        int rows = 19, cols = 70;
        float[] w = Layers.weights(rows, cols, 3);
        double[] h = new double[cols * cols];
        for (int i = 0; i < cols; i++) h[i * cols + i] = 1;
        for (int gs : new int[] {16, -1}) {
            QuantizedWeight g = new Gptq(Gptq.Options.defaults(3).withGroupSize(gs).withActOrder(false)).quantize(w, rows, cols, h);
            QuantizedWeight r = new Rtn(3, gs, false, false).quantize(w, rows, cols, null);
            assertArrayEquals(r.codes, g.codes);
            assertArrayEquals(r.scales, g.scales);
            assertArrayEquals(r.zeros, g.zeros);
            assertArrayEquals(r.gIdx, g.gIdx);
        }
    }

    @Test
    void actOrderWithoutStaticGroupsGroupsByProcessingOrder() {
        int rows = 8, cols = 64;
        float[] w = Layers.weights(rows, cols, 1);
        double[] h = Layers.hessian(cols, 200, 2);
        QuantizedWeight q = new Gptq(Gptq.Options.defaults(4).withGroupSize(16).withStaticGroups(false)).quantize(w, rows, cols, h);
        int[] perm = Gptq.descendingOrder(diagonal(h, cols));
        for (int i = 0; i < cols; i++) assertEquals(i / 16, q.gIdx[perm[i]]);
        QuantizedWeight s = new Gptq(Gptq.Options.defaults(4).withGroupSize(16)).quantize(w, rows, cols, h);
        for (int c = 0; c < cols; c++) assertEquals(c / 16, s.gIdx[c]);
    }

    private static double[] diagonal(double[] h, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = h[i * n + i];
        return d;
    }

    @Test
    void inputsAreNotModified() {
        int rows = 5, cols = 40;
        float[] w = Layers.weights(rows, cols, 8);
        double[] h = Layers.hessian(cols, 80, 9, 3);
        float[] w0 = w.clone();
        double[] h0 = h.clone();
        new Gptq(Gptq.Options.defaults(2).withGroupSize(8)).quantize(w, rows, cols, h);
        assertArrayEquals(w0, w);
        assertArrayEquals(h0, h);
    }

    @Test
    void mseClippingRunsAndStaysBelowRtn() {
        int rows = 40, cols = 128;
        float[] w = Layers.weights(rows, cols, 21);
        double[] h = Layers.hessian(cols, 512, 22);
        for (int bits : new int[] {2, 3}) {
            QuantizedWeight q = new Gptq(Gptq.Options.defaults(bits).withGroupSize(32).withMseClip(true)).quantize(w, rows, cols, h);
            double gptq = ProxyError.relative(w, q.dequantize(), rows, cols, h);
            double rtn = ProxyError.relative(w, new Rtn(bits, 32, false, true).quantize(w, rows, cols, null).dequantize(), rows, cols, h);
            assertTrue(gptq < rtn, "bits " + bits + ": gptq+mse " + gptq + " rtn+mse " + rtn);
        }
    }

    @Test
    void tinyLayersMatchTheReference() {
        int[][] sizes = {{1, 1}, {1, 5}, {3, 1}, {2, 2}};
        for (int[] sz : sizes) {
            int rows = sz[0], cols = sz[1];
            float[] w = Layers.weights(rows, cols, rows * 7 + cols);
            double[] h = Layers.hessian(cols, 4 * cols, cols);
            for (int gs : new int[] {1, 2, -1}) {
                Gptq.Options o = Gptq.Options.defaults(3).withGroupSize(gs).withStaticGroups(false);
                QuantizedWeight q = new Gptq(o).quantize(w, rows, cols, h);
                GptqReference ref = new GptqReference();
                ref.check(w, rows, cols, h, o, q);
                assertEquals(0, ref.mismatches + ref.paramMismatches, rows + "x" + cols + " " + o + "\n" + ref.log);
            }
        }
    }

    @Test
    void badShapesAndValuesAreRejected() {
        Gptq g = new Gptq(Gptq.Options.defaults(4));
        assertThrows(IllegalArgumentException.class, () -> g.quantize(new float[6], 2, 4, new double[16]));
        assertThrows(IllegalArgumentException.class, () -> g.quantize(new float[8], 2, 4, new double[9]));
        assertThrows(IllegalArgumentException.class, () -> g.quantize(new float[8], 2, 4, null));
        double[] h = new double[16];
        h[5] = Double.NaN;
        assertThrows(IllegalArgumentException.class, () -> g.quantize(new float[8], 2, 4, h));
        assertThrows(IllegalArgumentException.class, () -> new Gptq.Options(5, 128, true, true, false, 0.01, false, 128));
        assertThrows(IllegalArgumentException.class, () -> new Gptq.Options(4, 0, true, true, false, 0.01, false, 128));
        assertThrows(IllegalArgumentException.class, () -> new Gptq.Options(4, 128, true, true, false, -1, false, 128));
    }
}
