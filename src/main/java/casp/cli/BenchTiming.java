package casp.cli;

import casp.io.BadInputException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;

/**
 * Shared plumbing of the `casp bench ...` commands: timing (median of several runs after
 * warm-up) and output (one JSON object with --json, otherwise one readable line).
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
            double[] sorted = seconds.clone();
            Arrays.sort(sorted);
            int n = sorted.length;
            this.median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
            this.best = sorted[0];
        }
    }

    /** Runs op warmup times untimed, then runs times timed (runs >= 1). */
    public static Stats measure(int warmup, int runs, Runnable op) {
        if (runs < 1) throw new IllegalArgumentException("runs must be >= 1");
        for (int i = 0; i < warmup; i++) op.run();
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long start = System.nanoTime();
            op.run();
            t[i] = (System.nanoTime() - start) * 1e-9;
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

    /** Returns value, or throws BadInputException naming the flag when it is below min. */
    public static int atLeast(String flag, int value, int min) {
        if (value < min) throw new BadInputException(flag + " must be >= " + min + ", got " + value);
        return value;
    }
}
