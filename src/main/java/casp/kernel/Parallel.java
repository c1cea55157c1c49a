package casp.kernel;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.Future;
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
     * calling thread runs task 0 itself. Runs everything inline when count is 1, there is one
     * thread, or the caller already is inside a forRange (a pool worker or a participating caller),
     * so a kernel called from inside a parallel region never nests. The first exception thrown
     * by a task is rethrown after all tasks have finished.
     */
    public static void forRange(int count, IntConsumer body) {
        if (count <= 1 || THREADS == 1 || INSIDE.get()
                || Thread.currentThread() instanceof ForkJoinWorkerThread
                && ((ForkJoinWorkerThread) Thread.currentThread()).getPool() == POOL) {
            for (int i = 0; i < count; i++) body.accept(i);
            return;
        }
        List<Future<?>> futures = new ArrayList<>(count - 1);
        for (int i = 1; i < count; i++) {
            final int task = i;
            futures.add(POOL.submit(() -> body.accept(task)));
        }
        Throwable failure = null;
        INSIDE.set(Boolean.TRUE);
        try {
            body.accept(0);
        } catch (RuntimeException | Error e) {
            failure = e;
        } finally {
            INSIDE.set(Boolean.FALSE);
        }
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                // ForkJoinPool hands back a copy of the task's exception wrapping the original: unwrap it.
                if (c != null && c.getCause() != null && c.getClass() == c.getCause().getClass()) c = c.getCause();
                if (failure == null) failure = c;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RuntimeException(e);
            }
        }
        if (failure instanceof RuntimeException) throw (RuntimeException) failure;
        if (failure instanceof Error) throw (Error) failure;
        if (failure != null) throw new RuntimeException(failure);
    }
}
