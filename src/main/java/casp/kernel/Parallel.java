package casp.kernel;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * The one set of worker threads of the process, sized to the available cores (or -Dcasp.threads).
 * Kernels split their work into a few coarse blocks and call {@link #forRange}; nothing nests
 * parallel loops: a forRange called from inside another one runs inline.
 *
 * <p>A loop allocates nothing: the helpers are threads that wait for the next loop (spinning
 * briefly, then parked), and the loop's state lives in static fields, so a decode step that calls
 * forRange dozens of times with reused bodies produces no garbage. One loop runs on the helpers at
 * a time; a thread that calls forRange while another thread's loop runs runs its own loop inline.
 */
public final class Parallel {
    private Parallel() {}

    private static final int THREADS = Math.max(1,
            Integer.getInteger("casp.threads", Runtime.getRuntime().availableProcessors()));
    /** How long a waiting thread spins before it parks: longer than the gap between the loops of a decode step. */
    private static final long SPIN_NANOS = 50_000;

    /** Held by the thread whose loop runs on the helpers. */
    private static final AtomicBoolean BUSY = new AtomicBoolean();
    /** The running loop: written before its helpers are released, read by them after. */
    private static IntConsumer body;
    private static int count;
    private static volatile Thread caller;
    private static final AtomicInteger NEXT = new AtomicInteger();
    private static final AtomicInteger PENDING = new AtomicInteger();
    private static final AtomicReference<Throwable> FAILURE = new AtomicReference<>();
    private static final Helper[] HELPERS = startHelpers();

    /** Number of threads a loop runs on (the caller and the helpers). */
    public static int threads() {
        return THREADS;
    }

    /**
     * Runs body(i) for i in [0, count), spread over the threads; returns when all are done. The
     * calling thread takes part: it and up to threads() - 1 helpers pull indices from a shared
     * counter, so there are never more runnable threads than cores and uneven tasks balance
     * themselves. Runs everything inline when count is 1, there is one thread, the caller is
     * inside a forRange already (a helper or a participating caller), or another thread's loop
     * holds the helpers. The first exception thrown by a task is rethrown after all tasks have
     * finished.
     */
    public static void forRange(int count, IntConsumer body) {
        if (count <= 1 || THREADS == 1 || !BUSY.compareAndSet(false, true)) {
            for (int i = 0; i < count; i++) body.accept(i);
            return;
        }
        Throwable t;
        try {
            int helpers = Math.min(count, THREADS) - 1;
            Parallel.body = body;
            Parallel.count = count;
            caller = Thread.currentThread();
            NEXT.set(0);
            FAILURE.set(null);
            PENDING.set(helpers);
            for (int h = 0; h < helpers; h++) HELPERS[h].release();
            runShare();
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (PENDING.get() != 0) {
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(Parallel.class);
            }
            t = FAILURE.getAndSet(null);
            Parallel.body = null;
        } finally {
            BUSY.set(false);
        }
        if (t instanceof RuntimeException) throw (RuntimeException) t;
        if (t instanceof Error) throw (Error) t;
        if (t != null) throw new RuntimeException(t);
    }

    /** Pulls indices of the running loop until none are left. */
    private static void runShare() {
        IntConsumer b = body;
        int n = count, i;
        while ((i = NEXT.getAndIncrement()) < n) {
            try {
                b.accept(i);
            } catch (Throwable e) { // a helper that died would leave the loop waiting for it forever
                FAILURE.compareAndSet(null, e);
            }
        }
    }

    private static Helper[] startHelpers() {
        Helper[] helpers = new Helper[THREADS - 1];
        for (int h = 0; h < helpers.length; h++) {
            helpers[h] = new Helper(h + 1);
            helpers[h].start();
        }
        return helpers;
    }

    /** A worker: waits to be released, runs its share of the loop, reports that it is done. */
    private static final class Helper extends Thread {
        private volatile boolean go;

        Helper(int index) {
            super("casp-parallel-" + index);
            setDaemon(true);
        }

        void release() {
            go = true;
            LockSupport.unpark(this);
        }

        @Override
        public void run() {
            while (true) {
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while (!go) {
                    if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                    else LockSupport.park(this);
                }
                runShare();
                Thread waiting = caller;
                go = false; // before the count: the next loop may release this helper as soon as it reaches 0
                if (PENDING.decrementAndGet() == 0) LockSupport.unpark(waiting);
            }
        }
    }
}
