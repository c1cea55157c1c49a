package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ParallelTest {
    @Test
    void runsEveryIndexOnce() {
        for (int count : new int[] {0, 1, 2, 3, 17}) {
            AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(1, count));
            Parallel.forRange(count, i -> hits.incrementAndGet(i));
            for (int i = 0; i < count; i++) assertEquals(1, hits.get(i), "index " + i + " of " + count);
        }
    }

    @Test
    void nestedCallsRunInlineAndComplete() {
        AtomicInteger total = new AtomicInteger();
        Parallel.forRange(4, i -> Parallel.forRange(5, j -> total.incrementAndGet()));
        assertEquals(20, total.get());
    }

    @Test
    void rethrowsTheTaskFailureAfterAllTasksEnd() {
        AtomicInteger done = new AtomicInteger();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forRange(4, i -> {
            if (i == 2) throw new IllegalStateException("task 2");
            done.incrementAndGet();
        }));
        assertEquals("task 2", e.getMessage());
        assertEquals(3, done.get());
        assertTrue(Parallel.threads() >= 1);
    }
}
