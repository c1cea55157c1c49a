package casp.cli;

import java.util.Arrays;

/**
 * Best-of-N wall-clock timing for the `casp bench` commands: warm-up runs first (JIT, page faults),
 * then timed runs; the best run is the number to quote (the least disturbed by other processes on
 * a shared machine), the median says how noisy it was.
 */
// TODO(merge): if casp.cli.BenchTiming (kernel-gemm) lands with the same role, use it and delete this.
final class BenchTimer {
    private BenchTimer() {}

    /** Seconds of each timed run, in order. */
    record Result(double[] seconds) {
        double best() {
            return Arrays.stream(seconds).min().orElse(Double.NaN);
        }

        double median() {
            double[] s = seconds.clone();
            Arrays.sort(s);
            int n = s.length;
            return n == 0 ? Double.NaN : n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        }
    }

    /** A timed body that may return something (kept alive so the JIT cannot drop the work). */
    interface Body {
        Object run();
    }

    static Result time(int warmup, int runs, Body body) {
        Object sink = null;
        for (int i = 0; i < warmup; i++) sink = body.run();
        double[] s = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            sink = body.run();
            s[i] = (System.nanoTime() - t0) / 1e9;
        }
        if (sink == null) System.err.print(""); // keeps the last result reachable until here
        return new Result(s);
    }
}
