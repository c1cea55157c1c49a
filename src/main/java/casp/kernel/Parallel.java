package casp.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * The one shared thread pool of the process, sized to the available cores (or -Dcasp.threads).
 * Kernels split their work into a few coarse blocks and call {@link #forRange}; nothing nests
 * parallel loops: a forRange called from inside another one runs inline.
 */
public final class Parallel {
    private Parallel() {}

    private static final int THREADS = Math.max(1,
            Integer.getInteger("casp.threads", Runtime.getRuntime().availableProcessors()));
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS);
    /** Set while the calling thread runs its own share of a forRange. */
    private static final ThreadLocal<Boolean> INSIDE = ThreadLocal.withInitial(() -> Boolean.FALSE);

    /** Number of worker threads. */
    public static int threads() {
        return THREADS;
    }

    /**
     * Runs body(i) for i in [0, count), spread over the pool; returns when all are done. The
     * calling thread takes part: it and up to threads() - 1 pool workers pull task indices from a
     * shared counter, so there are never more runnable threads than cores (a caller that ran one
     * task and then blocked while the whole pool ran the rest made three threads share two cores)
     * and uneven tasks balance themselves. Runs everything inline when count is 1, there is one
     * thread, or the caller already is inside a forRange (a pool worker or a participating caller),
     * so a kernel called from inside a parallel region never nests. The first exception thrown by a
     * task is rethrown after all tasks have finished.
     */
    public static void forRange(int count, IntConsumer body) {
        if (count <= 1 || THREADS == 1 || INSIDE.get()
                || Thread.currentThread() instanceof ForkJoinWorkerThread
                && ((ForkJoinWorkerThread) Thread.currentThread()).getPool() == POOL) {
            for (int i = 0; i < count; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable worker = () -> {
            int i;
            while ((i = next.getAndIncrement()) < count) {
                try {
                    body.accept(i);
                } catch (RuntimeException | Error e) {
                    failure.compareAndSet(null, e);
                }
            }
        };
        int helpers = Math.min(count, THREADS) - 1;
        List<Future<?>> futures = new ArrayList<>(helpers);
        for (int h = 0; h < helpers; h++) futures.add(POOL.submit(worker));
        INSIDE.set(Boolean.TRUE);
        try {
            worker.run();
        } finally {
            INSIDE.set(Boolean.FALSE);
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) { // the worker catches task failures itself; this is a pool failure
                failure.compareAndSet(null, e.getCause() != null ? e.getCause() : e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RuntimeException(e);
            }
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException) throw (RuntimeException) t;
        if (t instanceof Error) throw (Error) t;
        if (t != null) throw new RuntimeException(t);
    }
}
