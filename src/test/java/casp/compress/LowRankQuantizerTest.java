package casp.compress;

import casp.quant.lowrank.LowRankLayer;
import casp.quant.lowrank.LowRankQKTest;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LowRankQuantizerTest {
    static final int M = 48, N = 64, T = 400, R = 12;
    static final float[] X = LowRankQKTest.inputs(T, N, 31);
    static final float[] W = LowRankQKTest.weight(M, N, 32);
    static final double[] G = LowRankQKTest.gram(X, T, N);

    static LowRankLayer run(LowRankQuantizer.Options o) {
        return new LowRankQuantizer(o).quantize(W, M, N, G);
    }

    @Test
    void denseFactorsGiveTheTruncationLossAndCountFloat32() {
        LowRankLayer l = run(LowRankQuantizer.Options.paper(R).withBits(0, 0));
        assertEquals("float32", l.aFormat());
        assertEquals("float32", l.bFormat());
        double measured = LowRankQKTest.measured(W, l.dequantize(), M, N, X, T);
        double total = LowRankQKTest.measured(W, new float[M * N], M, N, X, T);
        assertEquals(measured / total, l.stats().get("truncation_loss").doubleValue(), 1e-4 * measured / total);
        assertEquals(measured / total, l.stats().get("proxy_error").doubleValue(), 1e-3 * measured / total);
        assertEquals(32L * R * (M + N), l.storageBits());
    }

    @Test
    void quantizedFactorsAreCountedExactly() {
        LowRankLayer l = run(LowRankQuantizer.Options.paper(R).withBits(3, 4));
        assertEquals(3, l.bBits());
        assertEquals(4, l.aBits());
        long want = (long) R * N * 3 + (long) R * (16 + 3) + (long) M * R * 4 + (long) M * (16 + 4);
        assertEquals(want, l.storageBits());
        assertEquals((double) want / (M * N), l.effectiveBits(), 1e-12);
        // Quantizing costs accuracy, but not much at 3-4 bits.
        double e = l.stats().get("proxy_error").doubleValue(), t = l.stats().get("truncation_loss").doubleValue();
        assertTrue(e > t && e < t + 0.2, "proxy " + e + " truncation " + t);
    }

    @Test
    void refitOfANeverHurtsBeforeAIsQuantized() {
        // With A dense, the refit is the least-squares optimum given the quantized B.
        LowRankLayer plain = run(LowRankQuantizer.Options.paper(R).withBits(2, 0));
        LowRankLayer refit = run(LowRankQuantizer.Options.paper(R).withBits(2, 0).withRefitA(true));
        double p = LowRankQKTest.measured(W, plain.dequantize(), M, N, X, T);
        double f = LowRankQKTest.measured(W, refit.dequantize(), M, N, X, T);
        assertTrue(f <= p * (1 + 1e-6), "refit " + f + " vs " + p);
        assertTrue(f < 0.999 * p, "the refit should actually absorb some of B's error");
    }

    @Test
    void rotationLeavesDenseFactorsUnchangedAndMakesTheHessianOfADense() {
        LowRankLayer a = run(LowRankQuantizer.Options.paper(R).withBits(0, 0));
        LowRankLayer b = run(LowRankQuantizer.Options.paper(R).withBits(0, 0).withRotate(true));
        float[] pa = a.dequantize(), pb = b.dequantize();
        for (int i = 0; i < pa.length; i++) assertEquals(pa[i], pb[i], 1e-5);
        double[] ha = LowRankQuantizer.inputHessianOfA(a.b(), R, N, G), hb = LowRankQuantizer.inputHessianOfA(b.b(), R, N, G);
        assertTrue(offDiag(ha, R) < 1e-6 && offDiag(hb, R) > 1e-2);
    }

    private static double offDiag(double[] h, int r) {
        double off = 0, all = 0;
        for (int i = 0; i < r; i++) for (int j = 0; j < r; j++) {
            all += h[i * r + j] * h[i * r + j];
            if (i != j) off += h[i * r + j] * h[i * r + j];
        }
        return off / all;
    }

    @Test
    void thresholdRuleChoosesTheRank() {
        LowRankLayer l = run(LowRankQuantizer.Options.paper(1).withThreshold(0.05).withBits(0, 0));
        assertTrue(l.stats().get("truncation_loss").doubleValue() <= 0.05);
        LowRankLayer below = run(LowRankQuantizer.Options.paper(l.rank() - 1).withBits(0, 0));
        assertTrue(below.stats().get("truncation_loss").doubleValue() > 0.05);
    }
}
