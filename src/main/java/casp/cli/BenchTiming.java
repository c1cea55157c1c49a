package casp.cli;

import casp.io.BadInputException;
import casp.kernel.Parallel;
import casp.kernel.VectorSupport;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Shared plumbing of the `casp bench ...` commands: timing (median of several runs after
 * warm-up) and output (one JSON object with --json, otherwise one readable line). Commands with
 * the usual --json/--runs/--warmup flags take them as the {@link Options} mixin; the others
 * declare their own flags and call {@link #measure} and {@link #print}.
 */
public final class BenchTiming {
    private BenchTiming() {}

    /** Wall-clock seconds of the timed runs. */
    public static final class Stats {
        /** Every timed run, in order. */
        public final double[] seconds;
        /** Median of the timed runs (the figure `seconds` reports). */
        public final double median;
        /** Fastest timed run. */
        public final double best;

        Stats(double[] seconds) {
            this.seconds = seconds;
            this.median = median(seconds);
            this.best = Arrays.stream(seconds).min().orElseThrow();
        }
    }

    /** Median of a (not modified; the mean of the two middle values when the length is even). */
    public static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }

    /**
     * Least wall time spent warming up when warmup > 0: C2 compiles a kernel only after thousands of
     * loop iterations and several calls, so a fixed count of warm-up runs is too few for the
     * larger kernels (SYRK 8192 x 1024 needs about ten 70 ms runs before it reaches full speed; the
     * 2-bit mat-vec at 16384 x 16384 gets its final C2 code about 1.7 s after its first call, and after
     * a 1 s warm-up measured 10.7-12.0 GB/s where it runs 14.8).
     */
    static final double MIN_WARMUP_SECONDS = 2.0;

    /**
     * Runs op warmup times untimed (and further until {@link #MIN_WARMUP_SECONDS} have passed, when
     * warmup > 0), then runs times timed (runs >= 1).
     */
    public static Stats measure(int warmup, int runs, Runnable op) {
        return measure(warmup, runs, op, MIN_WARMUP_SECONDS, System::nanoTime);
    }

    /** {@link #measure(int, int, Runnable)} with the least warm-up time and the clock (nanoseconds) given. */
    static Stats measure(int warmup, int runs, Runnable op, double minWarmupSeconds, java.util.function.LongSupplier clock) {
        if (runs < 1) throw new IllegalArgumentException("runs must be >= 1");
        long warmStart = clock.getAsLong();
        for (int i = 0; i < warmup || warmup > 0 && (clock.getAsLong() - warmStart) * 1e-9 < minWarmupSeconds; i++) op.run();
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long start = clock.getAsLong();
            op.run();
            t[i] = (clock.getAsLong() - start) * 1e-9;
        }
        return new Stats(t);
    }

    /** Prints fields (in their map order) as one JSON object on one line. */
    public static void printJson(PrintStream out, Map<String, ?> fields) {
        try {
            out.println(new ObjectMapper().writeValueAsString(fields));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write benchmark JSON", e);
        }
    }

    /** Prints fields as "key=value key=value ..." on one line, doubles with 4 significant digits. */
    public static void printText(PrintStream out, Map<String, ?> fields) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, ?> e : fields.entrySet()) {
            if (sb.length() > 0) sb.append(' ');
            Object v = e.getValue();
            sb.append(e.getKey()).append('=').append(v instanceof Double ? String.format("%.4g", (Double) v) : String.valueOf(v));
        }
        out.println(sb);
    }

    /** Prints with {@link #printJson} or {@link #printText}. */
    public static void print(PrintStream out, boolean json, Map<String, ?> fields) {
        if (json) printJson(out, fields);
        else printText(out, fields);
    }

    /**
     * The flags most benchmarks share (--json, --runs, --warmup) as a picocli mixin, with the
     * timing and the report that go with them.
     */
    public static final class Options {
        @Option(names = "--json", description = "Print one JSON object instead of a line of text.")
        boolean json;

        @Option(names = "--runs", defaultValue = "7", description = "Timed runs (median reported; default ${DEFAULT-VALUE}).")
        int runs;

        @Option(names = "--warmup", defaultValue = "5", description = "Untimed warm-up runs, continued until at least 2 s have passed when > 0 (default ${DEFAULT-VALUE}).")
        int warmup;

        /** Fastest timed run of the last {@link #measure}, reported as best_seconds. */
        private double best = Double.NaN;

        /** Runs body warmup times, then runs times; returns the median wall time in seconds. */
        public double measure(Runnable body) {
            if (runs < 1) throw new BadInputException("--runs must be at least 1, got " + runs);
            if (warmup < 0) throw new BadInputException("--warmup must be 0 or more, got " + warmup);
            Stats st = BenchTiming.measure(warmup, runs, body);
            best = st.best;
            return st.median;
        }

        /**
         * Prints the result. sizes are the benchmark's size flags in order (e.g. "n" -> 2048);
         * rateKey is "gflops" (or e.g. "gbytes_per_s") and rate its value.
         */
        public void report(String op, Map<String, Object> sizes, double seconds, String rateKey, double rate) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("op", op);
            out.putAll(sizes);
            out.put("seconds", seconds);
            if (!Double.isNaN(best)) out.put("best_seconds", best);
            out.put(rateKey, rate);
            out.put("threads", Parallel.threads());
            out.put("vector_bits", VectorSupport.bits());
            if (json) {
                printJson(System.out, out);
            } else {
                StringBuilder s = new StringBuilder(op);
                sizes.forEach((k, v) -> s.append(' ').append(k).append('=').append(v));
                System.out.printf("%s: %.4f s (median of %d after %d warm-up), %.2f %s [%s, %d threads]%n",
                        s, seconds, runs, warmup, rate, rateKey, VectorSupport.describe(), Parallel.threads());
            }
        }
    }

    /** Returns value, or throws BadInputException naming the flag when it is below min. */
    public static int atLeast(String flag, int value, int min) {
        if (value < min) throw new BadInputException(flag + " must be >= " + min + ", got " + value);
        return value;
    }
}
