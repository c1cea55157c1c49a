package casp.kernel;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Bytes allocated by a piece of work on the calling thread and on {@link Parallel}'s helper
 * threads (the only threads the kernels run on), from HotSpot's per-thread allocation counters.
 * Allocation is deterministic once the JIT has compiled the code, unlike time; but the
 * interpreter and C1 box Vector API values, so {@link #settledBytes} repeats the work until a
 * round allocates nothing or the time is up, and reports the smallest round.
 *
 * <p>Measure in a JVM of its own ({@link #inFreshJvm}): in the test JVM, after other tests had
 * filled the compile queues, kernels of the decode path were seen still running C1 code (level 2,
 * which boxes every vector) 20 s into the measurement, while a fresh JVM settles in seconds.
 */
public final class AllocationMeter {
    private final com.sun.management.ThreadMXBean bean =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private final long[] ids;
    /** What reading the counters allocates itself (the bean may allocate its result arrays). */
    private final long overhead;

    public AllocationMeter() {
        if (!bean.isThreadAllocatedMemorySupported()) throw new IllegalStateException("this JVM does not count allocation per thread");
        bean.setThreadAllocatedMemoryEnabled(true);
        Parallel.forRange(Parallel.threads(), i -> { }); // the helpers exist once Parallel is initialised
        List<Long> found = new ArrayList<>();
        found.add(Thread.currentThread().getId());
        for (Thread t : Thread.getAllStackTraces().keySet()) if (t.getName().startsWith("casp-parallel-")) found.add(t.getId());
        ids = found.stream().mapToLong(Long::longValue).toArray();
        long least = Long.MAX_VALUE;
        for (int i = 0; i < 20; i++) least = Math.min(least, bytes(() -> { }, 0));
        overhead = least;
    }

    /** Helper threads found besides the caller. */
    public int helpers() {
        return ids.length - 1;
    }

    private long total() {
        long sum = 0;
        for (long id : ids) sum += bean.getThreadAllocatedBytes(id);
        return sum;
    }

    private long bytes(Runnable work, long minus) {
        long before = total();
        work.run();
        return total() - before - minus;
    }

    /** Bytes that one run of work allocated (less the meter's own). */
    public long bytes(Runnable work) {
        return bytes(work, overhead);
    }

    /**
     * The fewest bytes that one round of work allocated, over rounds repeated until one allocates
     * nothing or maxMillis have passed (the JIT compiles the hot code meanwhile).
     */
    public long settledBytes(Runnable round, long maxMillis) {
        return settledBytes(round, maxMillis, 0);
    }

    /** As {@link #settledBytes(Runnable, long)}, stopping as soon as a round allocates at most enough bytes. */
    public long settledBytes(Runnable round, long maxMillis, long enough) {
        long least = Long.MAX_VALUE;
        long end = System.nanoTime() + maxMillis * 1_000_000L;
        do {
            least = Math.min(least, bytes(round));
        } while (least > enough && System.nanoTime() < end);
        return least;
    }

    /** What {@link #report} prints before a measurement, for {@link #inFreshJvm} to find. */
    private static final String PREFIX = "allocated-bytes ";

    /** Prints a measurement for {@link #inFreshJvm}: name (no spaces) and bytes. */
    public static void report(String name, long bytes) {
        System.out.println(PREFIX + name + " " + bytes);
    }

    /**
     * Runs main (whose main method measures and {@link #report}s) in a new JVM with this one's
     * class path and the Vector API; returns the reported bytes by name.
     */
    public static Map<String, Long> inFreshJvm(Class<?> main) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-Xmx1g", "-Dcasp.quiet=true",
                "-cp", System.getProperty("java.class.path"), main.getName()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) throw new IllegalStateException(main.getName() + " failed:\n" + out);
        Map<String, Long> bytes = new LinkedHashMap<>();
        for (String line : out.split("\n")) {
            if (!line.startsWith(PREFIX)) continue;
            String[] parts = line.substring(PREFIX.length()).trim().split(" ");
            bytes.put(parts[0], Long.parseLong(parts[1]));
        }
        if (bytes.isEmpty()) throw new IllegalStateException(main.getName() + " reported nothing:\n" + out);
        return bytes;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "caller + %d helper threads", helpers());
    }
}
