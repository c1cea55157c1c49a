package casp.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.function.IntConsumer;

/**
 * The one shared thread pool of the process, sized to the available cores. Kernels split their
 * work into a few coarse blocks and call {@link #forRange}; nothing nests parallel loops.
 */
public final class Parallel {
    private Parallel() {}

    private static final int THREADS = Math.max(1,
            Integer.getInteger("casp.threads", Runtime.getRuntime().availableProcessors()));
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS);

    /** Number of worker threads. */
    public static int threads() {
        return THREADS;
    }

    /**
     * Runs body(i) for i in [0, count), spread over the pool; returns when all are done. Runs
     * inline when count is 1, there is one thread, or the caller already is a pool worker (so a
     * kernel called from inside a parallel region never nests).
     */
    public static void forRange(int count, IntConsumer body) {
        if (count <= 1 || THREADS == 1 || Thread.currentThread() instanceof java.util.concurrent.ForkJoinWorkerThread
                && ((java.util.concurrent.ForkJoinWorkerThread) Thread.currentThread()).getPool() == POOL) {
            for (int i = 0; i < count; i++) body.accept(i);
            return;
        }
        List<Future<?>> futures = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            final int task = i;
            futures.add(POOL.submit(() -> body.accept(task)));
        }
        RuntimeException failure = null;
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable c = e.getCause();
                if (failure == null) failure = c instanceof RuntimeException ? (RuntimeException) c : new RuntimeException(c);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RuntimeException(e);
            }
        }
        if (failure != null) throw failure;
    }
}
