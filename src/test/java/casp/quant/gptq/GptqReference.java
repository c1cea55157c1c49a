package casp.quant.gptq;

import casp.tensor.DType;

/**
 * A straightforward GPTQ for tests: float64 throughout, column by column with no lazy batching,
 * H^-1 formed explicitly and factorized the way gptq.py does it (cholesky, cholesky_inverse,
 * cholesky upper), and its own min/max grid written from ALGORITHMS.md section 6.
 *
 * <p>It runs in lockstep with a result of {@link Gptq} so that it can tell a real disagreement
 * from a floating-point tie: whenever its own code (or group scale/zero) differs from Gptq's, it
 * checks how far its float64 value was from the rounding boundary; within {@link #TIE} it counts a
 * tie and continues with Gptq's choice (so one tie does not cascade through the error feedback),
 * beyond it counts a mismatch.
 */
final class GptqReference {
    /** Distance to a rounding boundary, in units of the rounding step, below which float32 may round the other way. */
    static final double TIE = 1e-3;

    int ties, mismatches, paramTies, paramMismatches;
    double closestTie = Double.POSITIVE_INFINITY; // smallest distance to a boundary seen at any code
    final StringBuilder log = new StringBuilder();

    /** Runs the reference against q (same W, H, options, and the damping q reports). */
    void check(float[] w0, int rows, int cols, double[] h0, Gptq.Options o, QuantizedWeight q) {
        double percDamp = q.stats().get("percdamp").doubleValue();
        int maxq = (1 << o.bits()) - 1, gs = o.groupSize();
        boolean staticParams = gs < 0 || o.staticGroups();
        double[][] w = new double[rows][cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) w[r][c] = w0[r * cols + c];
        double[][] h = new double[cols][cols];
        for (int i = 0; i < cols; i++) for (int j = 0; j < cols; j++) h[i][j] = h0[i * cols + j];
        for (int i = 0; i < cols; i++) {
            if (h[i][i] == 0) {
                h[i][i] = 1;
                for (int r = 0; r < rows; r++) w[r][i] = 0;
            }
        }
        int groups = QuantizedWeight.groupCount(cols, gs);
        double[][] scale = new double[groups][rows], zero = new double[groups][rows];
        if (staticParams) {
            for (int g = 0; g < groups; g++) {
                int c0 = gs < 0 ? 0 : g * gs, c1 = gs < 0 ? cols : Math.min(cols, c0 + gs);
                for (int r = 0; r < rows; r++) params(w[r], c0, c1, maxq, o.symmetric(), scale[g], zero[g], r, q, g);
            }
        }
        int[] perm = new int[cols];
        for (int i = 0; i < cols; i++) perm[i] = i;
        if (o.actOrder()) {
            Integer[] idx = new Integer[cols];
            for (int i = 0; i < cols; i++) idx[i] = i;
            final double[][] hh = h;
            java.util.Arrays.sort(idx, (a, b) -> Double.compare(hh[b][b], hh[a][a]));
            for (int i = 0; i < cols; i++) perm[i] = idx[i];
        }
        double[][] wp = new double[rows][cols], hp = new double[cols][cols];
        for (int r = 0; r < rows; r++) for (int i = 0; i < cols; i++) wp[r][i] = w[r][perm[i]];
        for (int i = 0; i < cols; i++) for (int j = 0; j < cols; j++) hp[i][j] = h[perm[i]][perm[j]];
        double mean = 0;
        for (int i = 0; i < cols; i++) mean += hp[i][i];
        mean /= cols;
        for (int i = 0; i < cols; i++) hp[i][i] += percDamp * mean;
        double[][] u = upperCholeskyOfInverse(hp);

        for (int i = 0; i < cols; i++) {
            int g = gs < 0 ? 0 : staticParams ? perm[i] / gs : i / gs;
            if (q.gIdx[perm[i]] != g) {
                mismatches++;
                log.append("g_idx[").append(perm[i]).append("] ").append(q.gIdx[perm[i]]).append(" != ").append(g).append('\n');
            }
            if (!staticParams && i % gs == 0) {
                for (int r = 0; r < rows; r++) params(wp[r], i, Math.min(cols, i + gs), maxq, o.symmetric(), scale[g], zero[g], r, q, g);
            }
            for (int r = 0; r < rows; r++) {
                double s = scale[g][r], z = zero[g][r];
                double v = wp[r][i] / s;
                int code = (int) Math.max(0, Math.min(maxq, Math.rint(v) + z));
                int got = q.code(r, perm[i]);
                double dist = Math.abs(Math.abs(v - Math.floor(v)) - 0.5);
                boolean clamped = Math.rint(v) + z < 0 || Math.rint(v) + z > maxq;
                if (!clamped) closestTie = Math.min(closestTie, dist);
                if (got != code) {
                    if (dist < TIE) {
                        ties++;
                        log.append(String.format("code tie (%d,%d): java %d ref %d, w/scale %.9f is %.2e from a .5%n",
                                r, perm[i], got, code, v, dist));
                        code = got;
                    } else {
                        mismatches++;
                        if (mismatches <= 5) {
                            log.append(String.format("code (%d,%d) java %d ref %d, v=%.6f%n", r, perm[i], got, code, v));
                        }
                    }
                }
                double qv = s * (code - z);
                double err = (wp[r][i] - qv) / u[i][i];
                for (int j = i + 1; j < cols; j++) wp[r][j] -= err * u[i][j];
            }
        }
    }

    /** Min/max grid for w[c0:c1] of one row, checked against (and then synchronised to) q's choice. */
    private void params(double[] w, int c0, int c1, int maxq, boolean sym, double[] scale, double[] zero, int r,
                        QuantizedWeight q, int g) {
        double lo = 0, hi = 0;
        for (int c = c0; c < c1; c++) {
            lo = Math.min(lo, w[c]);
            hi = Math.max(hi, w[c]);
        }
        if (sym) {
            hi = Math.max(-lo, hi);
            lo = -hi;
        }
        if (lo == 0 && hi == 0) {
            lo = -1;
            hi = 1;
        }
        double raw = (hi - lo) / maxq;
        double s = fp16(raw), z;
        double zraw = Double.NaN;
        if (sym) {
            z = (maxq + 1) / 2;
        } else {
            zraw = -lo / s;
            z = Math.rint(zraw);
            if (z < 1) {
                z = 1;
                raw = hi / (maxq - 1);
                s = fp16(raw);
            }
        }
        double js = q.scales[g * q.rows + r], jz = q.zeros[g * q.rows + r];
        if (js != s || jz != z) {
            // Acceptable only as a tie: -xmin/scale on a .5 boundary (the zero, and with it the
            // zero >= 1 branch, may go either way), or the unrounded scale on an fp16 value (it is
            // rounded up: float32 may land just above it where float64 did not; the zero then
            // follows from the other scale).
            boolean zeroTie = !Double.isNaN(zraw) && Math.abs(Math.abs(zraw - Math.floor(zraw)) - 0.5) < TIE;
            double gap = Math.abs(js - s);
            boolean adjacent = js != s && Math.abs(DType.floatToF16((float) js) - DType.floatToF16((float) s)) == 1;
            boolean scaleTie = adjacent && Math.abs(raw - Math.min(js, s)) < TIE * gap;
            if (zeroTie || scaleTie) {
                paramTies++;
                log.append(String.format("parameter tie row %d group %d: java s=%s z=%s, ref s=%s z=%s; scale/fp16 %.9f, -xmin/scale %.9f%n",
                        r, g, js, jz, s, z, raw / Math.min(js, s), zraw));
            } else {
                paramMismatches++;
                if (paramMismatches <= 5) {
                    log.append(String.format("params row %d group %d: java s=%s z=%s, ref s=%s (raw %s) z=%s%n",
                            r, g, js, jz, s, raw, z));
                }
            }
            s = js;
            z = jz;
        }
        scale[r] = s;
        zero[r] = z;
    }

    /** The smallest fp16 value >= x (within [2^-24, 65504]), by search over the fp16 bit patterns. */
    private static double fp16(double x) {
        double c = Math.max(0x1p-24, Math.min(65504, x));
        int lo = 1, hi = 0x7bff; // smallest subnormal .. largest finite
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (DType.f16ToFloat((short) mid) >= c) hi = mid;
            else lo = mid + 1;
        }
        return DType.f16ToFloat((short) lo);
    }

    /** gptq.py: L = cholesky(H); Hinv = cholesky_inverse(L); U = cholesky(Hinv, upper=True). */
    static double[][] upperCholeskyOfInverse(double[][] h) {
        int n = h.length;
        double[][] l = cholesky(h);
        // Linv by forward substitution, then Hinv = Linv^T Linv
        double[][] li = new double[n][n];
        for (int c = 0; c < n; c++) {
            for (int i = c; i < n; i++) {
                double s = i == c ? 1 : 0;
                for (int k = c; k < i; k++) s -= l[i][k] * li[k][c];
                li[i][c] = s / l[i][i];
            }
        }
        double[][] hinv = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = Math.max(i, j); k < n; k++) s += li[k][i] * li[k][j];
                hinv[i][j] = s;
            }
        }
        double[][] l2 = cholesky(hinv);
        double[][] u = new double[n][n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) u[i][j] = l2[j][i];
        return u;
    }

    /** Lower Cholesky factor; throws when H is not positive definite. */
    static double[][] cholesky(double[][] h) {
        int n = h.length;
        double[][] l = new double[n][n];
        for (int j = 0; j < n; j++) {
            double d = h[j][j];
            for (int k = 0; k < j; k++) d -= l[j][k] * l[j][k];
            if (!(d > 0)) throw new ArithmeticException("not positive definite at " + j);
            l[j][j] = Math.sqrt(d);
            for (int i = j + 1; i < n; i++) {
                double s = h[i][j];
                for (int k = 0; k < j; k++) s -= l[i][k] * l[j][k];
                l[i][j] = s / l[j][j];
            }
        }
        return l;
    }
}
