package casp.io;

/**
 * Where the run time keeps a model's F16 / BF16 tensors.
 *
 * <p>MAP uses them in place from the memory-mapped shards: loading takes seconds, nothing is copied,
 * and the pages belong to the file cache (shared, dropped and reread under memory pressure). HEAP
 * copies them into Java arrays: loading reads every byte, the memory is the process's own, and the
 * JVM can back it with transparent huge pages, which the kernel does not do for a mapped file. With
 * 4 KiB pages each 4 KiB of a streamed weight matrix costs a TLB miss (in a virtual machine a
 * two-level page walk) and restarts the hardware prefetcher, so the mat-vec of a decoded token
 * reads mapped weights measurably slower than weights on the heap (see docs/real-size.md).
 * AUTO picks HEAP when the 16-bit tensors take at most half of the machine's memory and fit in the
 * JVM's free heap with room to spare, else MAP: a model that crowds the machine stays a file the
 * kernel can page.
 */
public enum WeightPlacement {
    AUTO, MAP, HEAP;

    /** Heap that must stay free beside the copied weights (activations, caches, the young generation). */
    static final long MIN_SPARE_HEAP = 1L << 30;

    /**
     * AUTO's choice for sixteenBitBytes of 16-bit tensors on a machine of physicalBytes of memory
     * (0 when unknown) and a JVM with freeHeapBytes of heap it can still use: HEAP when the
     * tensors take at most half of the machine and leave a quarter of their size, at least 1 GiB,
     * of that heap free; MAP otherwise, and whenever the machine's memory is unknown.
     */
    static WeightPlacement choose(long sixteenBitBytes, long physicalBytes, long freeHeapBytes) {
        if (sixteenBitBytes == 0) return MAP;
        boolean smallForMachine = physicalBytes > 0 && sixteenBitBytes <= physicalBytes / 2;
        long spare = Math.max(MIN_SPARE_HEAP, sixteenBitBytes / 4);
        boolean fitsHeap = sixteenBitBytes <= freeHeapBytes - spare;
        return smallForMachine && fitsHeap ? HEAP : MAP;
    }

    /** The machine's physical memory in bytes, 0 when the JVM cannot tell. */
    static long physicalMemory() {
        try {
            var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            return os instanceof com.sun.management.OperatingSystemMXBean s ? s.getTotalMemorySize() : 0;
        } catch (LinkageError | RuntimeException e) { // a runtime without the jdk.management module
            return 0;
        }
    }

    /** Heap this JVM can still grow into: its maximum less what is in use now. */
    static long freeHeap() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    /** The name used on the command line and in reports. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
