package casp.compress;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BitAllocationTest {

    static List<BitAllocation.Unit> randomUnits(Random r, int n, int k) {
        List<BitAllocation.Unit> units = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int[] widths = new int[k];
            long[] cost = new long[k];
            double[] dist = new double[k];
            long c = 1 + r.nextInt(50);
            double d = 1 + 10 * r.nextDouble();
            for (int j = 0; j < k; j++) {
                widths[j] = 2 + j;
                cost[j] = c;
                dist[j] = d;
                c += r.nextInt(3) == 0 ? 0 : 1 + r.nextInt(40); // sometimes a free upgrade
                d *= r.nextDouble();
            }
            units.add(new BitAllocation.Unit("u" + i, i, 100, widths, cost, dist));
        }
        return units;
    }

    /** Exhaustive minimum distortion within budget. */
    static double brute(List<BitAllocation.Unit> units, int i, long left) {
        if (i == units.size()) return 0;
        BitAllocation.Unit u = units.get(i);
        double best = Double.POSITIVE_INFINITY;
        for (int c = 0; c < u.choices(); c++) {
            if (u.costBits()[c] <= left) best = Math.min(best, u.distortion()[c] + brute(units, i + 1, left - u.costBits()[c]));
        }
        return best;
    }

    @Test
    void knapsackMatchesBruteForce() {
        Random r = new Random(7);
        for (int trial = 0; trial < 300; trial++) {
            int n = 1 + r.nextInt(6), k = 2 + r.nextInt(2);
            List<BitAllocation.Unit> units = randomUnits(r, n, k);
            long base = 0, top = 0;
            for (BitAllocation.Unit u : units) {
                base += u.costBits()[0];
                top += u.costBits()[k - 1];
            }
            long budget = base + (long) (r.nextDouble() * 1.1 * (top - base));
            BitAllocation.Result res = BitAllocation.solve(BitAllocation.Mode.MEASURED, units, budget);
            assertTrue(res.exact());
            assertTrue(res.bitsUsed() <= budget);
            double want = brute(units, 0, budget);
            assertEquals(want, res.distortion(), 1e-9 * Math.max(1, want), "trial " + trial);
        }
    }

    @Test
    void knapsackIsExactWithLargeCommonFactors() {
        // Extras are multiples of 4160 (a 64x64 linear going from 2 to 3 bits with per-row zeros), the
        // slack is not: the gcd discretisation must still find the optimum.
        Random r = new Random(3);
        for (int trial = 0; trial < 50; trial++) {
            List<BitAllocation.Unit> units = new ArrayList<>();
            int n = 2 + r.nextInt(5);
            for (int i = 0; i < n; i++) {
                int mult = 1 + r.nextInt(4);
                long c0 = 100_000L * mult + r.nextInt(1000);
                units.add(new BitAllocation.Unit("u" + i, i, 1000, new int[]{2, 3, 4},
                        new long[]{c0, c0 + 4160L * mult, c0 + 2 * 4160L * mult},
                        new double[]{r.nextDouble() + 1, r.nextDouble() * 0.5 + 0.4, r.nextDouble() * 0.3}));
            }
            long base = units.stream().mapToLong(u -> u.costBits()[0]).sum();
            long budget = base + r.nextInt(60_000);
            BitAllocation.Result res = BitAllocation.solve(BitAllocation.Mode.MEASURED, units, budget);
            assertEquals(brute(units, 0, budget), res.distortion(), 1e-12);
        }
    }

    @Test
    void hugeCoprimeCostsAreCoarsenedButStayWithinBudget() {
        // Extras 100000007 and 100000037 (gcd 1) with a slack of 2e8 bits: the exact table would be
        // 3 x 2e8 cells, so the unit is coarsened (extras rounded up) and the result flagged inexact.
        List<BitAllocation.Unit> units = List.of(
                new BitAllocation.Unit("a", 0, 1, new int[]{2, 3}, new long[]{5, 100_000_012L}, new double[]{3, 1}),
                new BitAllocation.Unit("b", 1, 1, new int[]{2, 3}, new long[]{7, 100_000_044L}, new double[]{2, 1}),
                new BitAllocation.Unit("c", 2, 1, new int[]{2, 3}, new long[]{1, 2}, new double[]{1, 0.5}));
        long exactFit = 13 + 200_000_045L;
        BitAllocation.Result res = BitAllocation.solve(BitAllocation.Mode.MEASURED, units, exactFit);
        assertTrue(!res.exact() && res.bitsUsed() <= exactFit); // rounding up may miss a fit to the bit
        long budget = exactFit + 1000; // a little room: the coarse grid (a few bits) finds the optimum
        res = BitAllocation.solve(BitAllocation.Mode.MEASURED, units, budget);
        assertTrue(!res.exact() && res.bitsUsed() <= budget);
        assertEquals(brute(units, 0, budget), res.distortion(), 1e-12);
    }

    @Test
    void noModeExceedsTheBudget() {
        Random r = new Random(11);
        for (int trial = 0; trial < 200; trial++) {
            List<BitAllocation.Unit> units = randomUnits(r, 1 + r.nextInt(12), 2);
            long base = units.stream().mapToLong(u -> u.costBits()[0]).sum();
            long top = units.stream().mapToLong(u -> u.costBits()[1]).sum();
            long budget = base + (long) (r.nextDouble() * (top - base));
            for (BitAllocation.Mode m : BitAllocation.Mode.values()) {
                BitAllocation.Result res = BitAllocation.solve(m, units, budget);
                assertTrue(res.bitsUsed() <= budget, m + " trial " + trial);
                double best = brute(units, 0, budget);
                assertTrue(res.distortion() >= best - 1e-9, m + " cannot beat the optimum");
            }
        }
        List<BitAllocation.Unit> units = randomUnits(r, 3, 2);
        assertThrows(IllegalArgumentException.class, () -> BitAllocation.solve(BitAllocation.Mode.UNIFORM, units, 0));
    }

    /** stories260K's linears: hidden 64, 4 kv heads of 8, intermediate 172, 5 layers; q/k low-rank (fixed). */
    static List<BitAllocation.LinearInfo> storiesLinears(Random r) {
        List<BitAllocation.LinearInfo> ls = new ArrayList<>();
        String[] names = {"self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        int[][] shapes = {{32, 64, -1}, {64, 64, -1}, {172, 64, -1}, {172, 64, -1}, {64, 172, 86}};
        for (int l = 0; l < 5; l++) {
            double importance = 0.05 + r.nextDouble();
            for (int i = 0; i < names.length; i++) {
                double d2 = importance * (0.05 + 0.1 * r.nextDouble());
                ls.add(new BitAllocation.LinearInfo(l, names[i], shapes[i][0], shapes[i][1], shapes[i][2], new double[]{d2, d2 * (0.2 + 0.1 * r.nextDouble())}));
            }
        }
        return ls;
    }

    @Test
    void linearUnitIsNeverWorseThanLayerUnit() {
        Random r = new Random(5);
        boolean strictlyBetterSeen = false;
        for (int trial = 0; trial < 30; trial++) {
            List<BitAllocation.LinearInfo> ls = storiesLinears(r);
            int[] widths = {2, 3};
            List<BitAllocation.Unit> perLayer = BitAllocation.units(ls, widths, true);
            List<BitAllocation.Unit> perLinear = BitAllocation.units(ls, widths, false);
            assertEquals(5, perLayer.size());
            assertEquals(25, perLinear.size());
            long base = perLayer.stream().mapToLong(u -> u.costBits()[0]).sum();
            assertEquals(base, perLinear.stream().mapToLong(u -> u.costBits()[0]).sum());
            // Slack smaller than one whole layer's upgrade half of the time: only the linear unit can use it.
            long layerUpgrade = perLayer.get(0).costBits()[1] - perLayer.get(0).costBits()[0];
            long budget = base + (long) (r.nextDouble() * 2 * layerUpgrade);
            BitAllocation.Result a = BitAllocation.solve(BitAllocation.Mode.MEASURED, perLayer, budget);
            BitAllocation.Result b = BitAllocation.solve(BitAllocation.Mode.MEASURED, perLinear, budget);
            assertTrue(b.distortion() <= a.distortion() + 1e-12, "trial " + trial + ": linear " + b.distortion() + " layer " + a.distortion());
            if (b.distortion() < a.distortion() - 1e-9) strictlyBetterSeen = true;
        }
        assertTrue(strictlyBetterSeen, "on these instances the finer unit should help at least once");
    }

    @Test
    void paperWidensFirstThenLastLayer() {
        List<BitAllocation.Unit> units = new ArrayList<>();
        for (int l = 0; l < 6; l++) units.add(new BitAllocation.Unit("layer " + l, l, 10, new int[]{2, 3}, new long[]{20, 30}, null));
        BitAllocation.Result res = BitAllocation.solve(BitAllocation.Mode.PAPER, units, 6 * 20 + 25);
        assertEquals("layer 0: 3, layer 1: 2, layer 2: 2, layer 3: 2, layer 4: 2, layer 5: 3", res.describe());
        res = BitAllocation.solve(BitAllocation.Mode.PAPER, units, 6 * 20 + 30);
        assertEquals("layer 0: 3, layer 1: 3, layer 2: 2, layer 3: 2, layer 4: 2, layer 5: 3", res.describe());
    }

    @Test
    void closedFormGivesWideningToTheLargestVariance() {
        List<BitAllocation.Unit> units = new ArrayList<>();
        double[] var = {1, 16, 1, 1};
        for (int i = 0; i < var.length; i++) {
            units.add(new BitAllocation.Unit("u" + i, i, 10, new int[]{2, 3}, new long[]{20, 30}, new double[]{var[i], var[i] / 4}));
        }
        // Slack 10 of 40: level 2.25; b_1 = 2.25 + 0.5 log2(16 / 16^(1/4)) = 3.75: widened; the
        // others, 2.25 - 0.5 = 1.75, round to 2.
        BitAllocation.Result res = BitAllocation.solve(BitAllocation.Mode.CLOSED_FORM, units, 90);
        assertEquals("u0: 2, u1: 3, u2: 2, u3: 2", res.describe());
        // Without the budget for it, u1 stays narrow too.
        res = BitAllocation.solve(BitAllocation.Mode.CLOSED_FORM, units, 89);
        assertEquals("u0: 2, u1: 2, u2: 2, u3: 2", res.describe());
        // With all the budget (level 3), the others reach 2.5 and round up: everything wide.
        res = BitAllocation.solve(BitAllocation.Mode.CLOSED_FORM, units, 120);
        assertEquals("u0: 3, u1: 3, u2: 3, u3: 3", res.describe());
    }

    @Test
    void modeNames() {
        for (BitAllocation.Mode m : BitAllocation.Mode.values()) assertEquals(m, BitAllocation.Mode.parse(m.cliName()));
        assertThrows(IllegalArgumentException.class, () -> BitAllocation.Mode.parse("greedy"));
    }
}
