package casp.cli;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress bar with rate and ETA for long commands, on stderr:
 * <pre>  label [=========>          ]  45% 9000/20000 tok  1234 tok/s  ETA 0:09</pre>
 * On a terminal it redraws one line (at most every 200 ms); when stderr is redirected it prints
 * a line at every 10% instead, so logs stay short. Silent with -Dcasp.quiet=true or CASP_QUIET=1.
 * Usage: {@code try (Progress p = new Progress("ppl", total, "tok")) { ... p.advance(n); ... }}.
 */
public final class Progress implements AutoCloseable {
    private static final int WIDTH = 28;
    private static final long REDRAW_NANOS = 200_000_000L;

    private final String label, unit;
    private final long total;
    private final PrintStream out;
    private final boolean enabled, terminal;
    private final long start = System.nanoTime();
    private long done, lastDraw;
    private int lastDecile = -1;
    private boolean drawn, closed;

    /** A bar on System.err, enabled unless casp.quiet is set. */
    public Progress(String label, long total, String unit) {
        this(label, total, unit, System.err, !quiet(), System.console() != null);
    }

    /** A bar on out; terminal selects in-place redraws rather than one line per 10%. */
    public Progress(String label, long total, String unit, PrintStream out, boolean enabled, boolean terminal) {
        this.label = label;
        this.total = Math.max(0, total);
        this.unit = unit;
        this.out = out;
        this.enabled = enabled;
        this.terminal = terminal;
    }

    /** Whether progress output is switched off (-Dcasp.quiet=true or environment CASP_QUIET=1). */
    public static boolean quiet() {
        String env = System.getenv("CASP_QUIET");
        return Boolean.getBoolean("casp.quiet") || (env != null && !env.isEmpty() && !env.equals("0"));
    }

    /** Adds n units of work done. */
    public void advance(long n) {
        set(done + n);
    }

    /** Sets the units of work done so far. */
    public synchronized void set(long value) {
        done = Math.min(Math.max(0, value), total);
        if (!enabled) return;
        long now = System.nanoTime();
        if (terminal) {
            if (done == total || now - lastDraw >= REDRAW_NANOS || !drawn) {
                out.print("\r" + line(now));
                out.flush();
                lastDraw = now;
                drawn = true;
            }
        } else {
            int decile = total == 0 ? 10 : (int) (done * 10 / total);
            if (decile != lastDecile) {
                out.println(line(now));
                lastDecile = decile;
                drawn = true;
            }
        }
    }

    public long done() { return done; }

    /** The current line (without carriage return). */
    synchronized String line(long now) {
        double secs = (now - start) / 1e9;
        double frac = total == 0 ? 1 : (double) done / total;
        int filled = (int) Math.round(frac * WIDTH);
        StringBuilder bar = new StringBuilder(WIDTH);
        for (int i = 0; i < WIDTH; i++) bar.append(i < filled ? '=' : i == filled ? '>' : ' ');
        double rate = secs > 0 ? done / secs : 0;
        String eta = done == 0 ? "--:--" : done >= total ? time(secs) : time(secs * (total - done) / done);
        return String.format(Locale.ROOT, "%s [%s] %3d%% %d/%d %s  %s %s/s  %s %s", label, bar, (int) (frac * 100),
                done, total, unit, rateText(rate), unit, done >= total ? "in" : "ETA", eta);
    }

    private static String rateText(double r) {
        return r >= 100 ? String.format(Locale.ROOT, "%.0f", r) : String.format(Locale.ROOT, "%.2f", r);
    }

    static String time(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    /** Finishes the line (a final draw, then a newline on a terminal). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (!enabled || !drawn) return;
        if (terminal) {
            out.print("\r" + line(System.nanoTime()));
            out.println();
        } else if (lastDecile != 10) {
            out.println(line(System.nanoTime()));
        }
        out.flush();
    }
}
