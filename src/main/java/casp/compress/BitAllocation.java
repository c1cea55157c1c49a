package casp.compress;

import casp.quant.gptq.GptqFormat;
import casp.quant.lowrank.LowRankLayer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * Chooses a bit width per unit (a decoder layer or a single linear layer) under a total bit budget,
 * ALGORITHMS.md section 5. Every cost is an exact integer number of stored bits (codes, fp16 scales,
 * zeros: {@link LowRankLayer#storageBits(int, int, int, int)}), so "within budget" is checked
 * without rounding.
 *
 * <p>Modes:
 * <ul>
 *   <li>{@link Mode#UNIFORM}: every unit at its narrowest candidate.</li>
 *   <li>{@link Mode#PAPER}: the first and last layers wider, as the paper's released settings
 *       (e.g. layers 0-6 and 31 of a 7B model): units are widened in the order layer 0, layer L-1,
 *       layer 1, layer 2, ..., each to the widest candidate that still fits.</li>
 *   <li>{@link Mode#CLOSED_FORM}: reverse water-filling. With D_u(b) ~ sigma_u^2 2^-2b (high-rate
 *       theory), b_u = b + 1/2 log2(sigma_u^2 / geomean sigma^2), the geometric mean weighted by
 *       parameters, sigma_u^2 taken as the unit's measured distortion at the narrowest width. Units
 *       are then visited by descending b_u and get the widest candidate not above round(b_u) that
 *       fits (the others still reserved at their narrowest).</li>
 *   <li>{@link Mode#MEASURED}: minimise sum_u D_u(b_u) subject to sum_u cost_u(b_u) <= budget, a
 *       multiple-choice knapsack solved exactly by dynamic programming over the budget. The
 *       discretisation is exact: costs are integers, and the DP counts the extra cost over the
 *       narrowest choice in units of g = gcd of all such extras; any sum of extras is then a
 *       multiple of g, so floor(slack / g) loses nothing. (Only if the table would exceed
 *       {@link #MAX_DP_CELLS} is the unit coarsened, extras rounded up so the result stays within
 *       budget; {@link Result#exact} says so.)</li>
 * </ul>
 */
public final class BitAllocation {
    private BitAllocation() {}

    /** Allocation modes (command-line names: uniform, paper, closed-form, measured). */
    public enum Mode {
        UNIFORM, PAPER, CLOSED_FORM, MEASURED;

        public String cliName() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        public static Mode parse(String s) {
            for (Mode m : values()) if (m.cliName().equals(s)) return m;
            throw new IllegalArgumentException("unknown allocation mode '" + s + "' (expected uniform, paper, closed-form or measured)");
        }
    }

    /**
     * An allocation unit.
     *
     * @param name       e.g. "layer 3" or "layers.3.mlp.up_proj"
     * @param layer      its decoder layer (for {@link Mode#PAPER})
     * @param params     original weights it holds (for the closed form's weighting)
     * @param widths     candidate widths, ascending
     * @param costBits   exact stored bits at each width (non-decreasing)
     * @param distortion measured (importance-weighted) distortion at each width; may be null for
     *                   the modes that do not use it (uniform, paper)
     */
    public record Unit(String name, int layer, long params, int[] widths, long[] costBits, double[] distortion) {
        public Unit {
            if (widths.length == 0 || costBits.length != widths.length || (distortion != null && distortion.length != widths.length)) {
                throw new IllegalArgumentException(name + ": widths, costs and distortions differ in number");
            }
            for (int i = 1; i < widths.length; i++) {
                if (widths[i] <= widths[i - 1] || costBits[i] < costBits[i - 1]) {
                    throw new IllegalArgumentException(name + ": widths must ascend and costs must not fall");
                }
            }
            for (long c : costBits) if (c < 0) throw new IllegalArgumentException(name + ": negative cost");
        }

        public int choices() {
            return widths.length;
        }
    }

    /**
     * The chosen widths.
     *
     * @param choice     index into each unit's candidates
     * @param bitsUsed   sum of the chosen costs (<= budgetBits)
     * @param distortion sum of the chosen distortions (NaN when distortions are not known)
     * @param exact      false only if the knapsack had to be coarsened
     */
    public record Result(Mode mode, List<Unit> units, int[] choice, long bitsUsed, long budgetBits, double distortion,
                         boolean exact) {
        public int width(int unit) {
            return units.get(unit).widths()[choice[unit]];
        }

        /** Human-readable summary: "layer 0: 3, layer 1: 2, ...". */
        public String describe() {
            StringBuilder sb = new StringBuilder();
            for (int u = 0; u < units.size(); u++) {
                if (u > 0) sb.append(", ");
                sb.append(units.get(u).name()).append(": ").append(width(u));
            }
            return sb.toString();
        }
    }

    /** Largest DP table (units x capacity cells) solved without coarsening. */
    public static final long MAX_DP_CELLS = 20_000_000L;

    /**
     * Allocates widths to units within budgetBits.
     *
     * @throws IllegalArgumentException if even the narrowest widths exceed the budget, or the mode
     *                                  needs distortions that a unit lacks
     */
    public static Result solve(Mode mode, List<Unit> units, long budgetBits) {
        long base = 0;
        for (Unit u : units) base += u.costBits()[0];
        if (base > budgetBits) {
            throw new IllegalArgumentException("the budget of " + budgetBits + " bits is below the " + base
                    + " bits of the narrowest widths");
        }
        int[] choice;
        boolean exact = true;
        switch (mode) {
            case UNIFORM -> choice = new int[units.size()];
            case PAPER -> choice = paper(units, budgetBits - base);
            case CLOSED_FORM -> choice = closedForm(units, budgetBits - base);
            case MEASURED -> {
                Knapsack k = knapsack(units, budgetBits - base);
                choice = k.choice;
                exact = k.exact;
            }
            default -> throw new AssertionError(mode);
        }
        long used = 0;
        double dist = 0;
        for (int i = 0; i < units.size(); i++) {
            Unit u = units.get(i);
            used += u.costBits()[choice[i]];
            dist += u.distortion() == null ? Double.NaN : u.distortion()[choice[i]];
        }
        if (used > budgetBits) throw new AssertionError("allocation exceeds the budget: " + used + " > " + budgetBits);
        return new Result(mode, List.copyOf(units), choice, used, budgetBits, dist, exact);
    }

    /** Widens units in the order layer 0, L-1, 1, 2, ..., L-2 (units of one layer in given order). */
    private static int[] paper(List<Unit> units, long slack) {
        int maxLayer = 0;
        for (Unit u : units) maxLayer = Math.max(maxLayer, u.layer());
        final int last = maxLayer;
        Integer[] order = new Integer[units.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Comparator<Integer> byPriority = Comparator.comparingInt(i -> {
            int l = units.get(i).layer();
            return l == 0 ? 0 : l == last ? 1 : l + 1;
        });
        Arrays.sort(order, byPriority.thenComparingInt(i -> i));
        return widenInOrder(units, order, slack, null);
    }

    /** Visits units in order; each gets its widest candidate (at most cap[u] if given) whose extra cost fits. */
    private static int[] widenInOrder(List<Unit> units, Integer[] order, long slack, int[] cap) {
        int[] choice = new int[units.size()];
        for (int i : order) {
            Unit u = units.get(i);
            int top = cap == null ? u.choices() - 1 : cap[i];
            for (int c = top; c > 0; c--) {
                long extra = u.costBits()[c] - u.costBits()[0];
                if (extra <= slack) {
                    choice[i] = c;
                    slack -= extra;
                    break;
                }
            }
        }
        return choice;
    }

    /** Reverse water-filling, rounded to the candidates within the budget (see the class comment). */
    private static int[] closedForm(List<Unit> units, long slack) {
        int n = units.size();
        double[] logVar = new double[n];
        double wsum = 0, lsum = 0, step = 0;
        for (int i = 0; i < n; i++) {
            Unit u = units.get(i);
            if (u.distortion() == null) throw new IllegalArgumentException(u.name() + ": closed-form allocation needs measured distortions");
            double v = Math.max(u.distortion()[0], 1e-300);
            logVar[i] = Math.log(v) / Math.log(2);
            wsum += u.params();
            lsum += u.params() * logVar[i];
            if (u.choices() > 1) step += u.costBits()[1] - u.costBits()[0];
        }
        double logGeo = lsum / wsum;
        // The water level: the mean width the budget pays for, with costs linear between the first
        // two candidates (b_mean = b_0 + slack / cost of widening everything by one step).
        double level = step > 0 ? Math.min(1, slack / step) : 0;
        double[] b = new double[n];
        int[] cap = new int[n];
        for (int i = 0; i < n; i++) {
            Unit u = units.get(i);
            double w0 = u.widths()[0], w1 = u.choices() > 1 ? u.widths()[1] : w0;
            b[i] = w0 + level * (w1 - w0) + 0.5 * (logVar[i] - logGeo);
            long target = Math.round(b[i]);
            int c = 0;
            while (c + 1 < u.choices() && u.widths()[c + 1] <= target) c++;
            cap[i] = c;
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> -b[i]).thenComparingInt(i -> i));
        return widenInOrder(units, order, slack, cap);
    }

    private record Knapsack(int[] choice, boolean exact) {}

    /** Exact multiple-choice knapsack over the extra cost above the narrowest widths. */
    static Knapsack knapsack(List<Unit> units, long slack) {
        int n = units.size();
        long g = 0;
        long[] top = new long[n];
        for (int i = 0; i < n; i++) {
            Unit u = units.get(i);
            if (u.distortion() == null) throw new IllegalArgumentException(u.name() + ": measured allocation needs distortions");
            for (int c = 1; c < u.choices(); c++) {
                long e = u.costBits()[c] - u.costBits()[0];
                g = gcd(g, e);
                top[i] = Math.max(top[i], e);
            }
        }
        if (g == 0) g = 1; // no extra costs anything: capacity 0, choices still by distortion
        long unit = g;
        long cap = capacity(slack, top, unit);
        boolean exact = true;
        if (cap > 0 && (cap + 1) * n > MAX_DP_CELLS) {
            // Coarsen: a unit of `unit` bits with extras rounded up, so the answer stays within budget.
            long factor = ((cap + 1) * n + MAX_DP_CELLS - 1) / MAX_DP_CELLS + 1;
            unit = g * factor;
            cap = capacity(slack, top, unit);
            exact = false;
        }
        int C = (int) cap;
        double[] dp = new double[C + 1], next = new double[C + 1];
        byte[][] pick = new byte[n][C + 1];
        for (int i = 0; i < n; i++) {
            Unit u = units.get(i);
            int k = u.choices();
            int[] w = new int[k];
            for (int c = 0; c < k; c++) {
                long e = u.costBits()[c] - u.costBits()[0];
                w[c] = (int) Math.min(Integer.MAX_VALUE, (e + unit - 1) / unit);
            }
            for (int cap2 = 0; cap2 <= C; cap2++) {
                double best = Double.POSITIVE_INFINITY;
                int arg = 0;
                for (int c = 0; c < k; c++) {
                    if (w[c] > cap2) continue;
                    double v = dp[cap2 - w[c]] + u.distortion()[c];
                    // Strict: on ties keep the cheaper (earlier) choice.
                    if (v < best) {
                        best = v;
                        arg = c;
                    }
                }
                next[cap2] = best;
                pick[i][cap2] = (byte) arg;
            }
            double[] t = dp;
            dp = next;
            next = t;
        }
        // dp[c] is the best distortion within capacity c (non-increasing in c); trace back from C.
        int[] choice = new int[n];
        int c = C;
        for (int i = n - 1; i >= 0; i--) {
            Unit u = units.get(i);
            int ch = pick[i][c];
            choice[i] = ch;
            c -= (int) Math.min(Integer.MAX_VALUE, (u.costBits()[ch] - u.costBits()[0] + unit - 1) / unit);
        }
        return new Knapsack(choice, exact);
    }

    /** DP capacity: floor(slack / unit), but no more than all widest choices together need. */
    private static long capacity(long slack, long[] top, long unit) {
        long all = 0;
        for (long t : top) all += (t + unit - 1) / unit;
        return Math.min(slack / unit, all);
    }

    private static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return Math.abs(a);
    }

    /**
     * Units for an allocation: one per decoder layer ({@code perLayer}) or one per linear. Each
     * linear is described by its shape and its distortion per candidate width.
     *
     * @param linears the allocatable linears (q/k excluded when they are low-rank: their factors have a
     *                fixed width)
     */
    public static List<Unit> units(List<LinearInfo> linears, int[] widths, boolean perLayer) {
        return units(linears, widths, perLayer, (l, bits) -> GptqFormat.storageBits(l.rows(), l.cols(), bits, l.groupSize()));
    }

    /** The exact stored bits of a linear at a width under some quantizer (a scalar grid's, QuIP#'s). */
    @FunctionalInterface
    public interface Cost {
        long bits(LinearInfo linear, int width);
    }

    /** {@link #units(List, int[], boolean)} with the linears' costs from {@code cost} (e.g. QuIP#'s codes, signs and scale). */
    public static List<Unit> units(List<LinearInfo> linears, int[] widths, boolean perLayer, Cost cost0) {
        List<Unit> out = new ArrayList<>();
        if (!perLayer) {
            for (LinearInfo l : linears) {
                long[] cost = new long[widths.length];
                for (int c = 0; c < widths.length; c++) cost[c] = cost0.bits(l, widths[c]);
                out.add(new Unit("layers." + l.layer() + "." + l.name(), l.layer(), (long) l.rows() * l.cols(), widths.clone(),
                        cost, l.distortion() == null ? null : l.distortion().clone()));
            }
            return out;
        }
        int maxLayer = -1;
        for (LinearInfo l : linears) maxLayer = Math.max(maxLayer, l.layer());
        for (int layer = 0; layer <= maxLayer; layer++) {
            long[] cost = new long[widths.length];
            double[] dist = new double[widths.length];
            long params = 0;
            boolean any = false, known = true;
            for (LinearInfo l : linears) {
                if (l.layer() != layer) continue;
                any = true;
                params += (long) l.rows() * l.cols();
                for (int c = 0; c < widths.length; c++) {
                    cost[c] += cost0.bits(l, widths[c]);
                    if (l.distortion() == null) known = false;
                    else dist[c] += l.distortion()[c];
                }
            }
            if (any) out.add(new Unit("layer " + layer, layer, params, widths.clone(), cost, known ? dist : null));
        }
        return out;
    }

    /**
     * One allocatable linear: its decoder layer, name, shape, group size (-1 per channel) and
     * (importance-weighted) distortion at each candidate width (null if not measured).
     */
    public record LinearInfo(int layer, String name, int rows, int cols, int groupSize, double[] distortion) {}
}
