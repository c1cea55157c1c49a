package casp.compress;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tracks peak memory during a long run: the largest used Java heap seen by a daemon thread that
 * samples every {@link #PERIOD_MS} ms (short spikes between samples are missed), and, on Linux,
 * the process's peak resident set size (VmHWM of /proc/self/status: heap, metaspace, memory-mapped
 * weights that were touched, everything).
 */
public final class PeakMemory implements AutoCloseable {
    static final long PERIOD_MS = 20;

    private final MemoryMXBean bean = ManagementFactory.getMemoryMXBean();
    private final Thread sampler;
    private volatile boolean running = true;
    private volatile long peakHeap;

    private PeakMemory() {
        sample();
        sampler = new Thread(() -> {
            while (running) {
                sample();
                try {
                    Thread.sleep(PERIOD_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "casp-peak-memory");
        sampler.setDaemon(true);
    }

    /** Starts sampling. */
    public static PeakMemory start() {
        PeakMemory p = new PeakMemory();
        p.sampler.start();
        return p;
    }

    /** Takes a sample now (callers may add one at points they know are high). */
    public void sample() {
        long used = bean.getHeapMemoryUsage().getUsed();
        if (used > peakHeap) peakHeap = used;
    }

    /** The largest used heap sampled so far, in bytes. */
    public long peakHeapBytes() {
        return peakHeap;
    }

    /** Peak resident set size of this process in bytes (VmHWM), or -1 where /proc is not available. */
    public static long peakRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    String[] f = line.substring(6).trim().split("\\s+");
                    return Long.parseLong(f[0]) * 1024; // kB
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    @Override
    public void close() {
        running = false;
        sampler.interrupt();
        sample();
    }
}
