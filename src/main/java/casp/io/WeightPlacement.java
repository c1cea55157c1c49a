package casp.io;

/**
 * Where the run time keeps a model's F16 / BF16 tensors.
 *
 * <p>MAP uses them in place from the memory-mapped shards: nothing is copied, and the pages belong
 * to the file cache (shared, dropped and reread under memory pressure). HEAP copies them into Java
 * arrays: the load copies every byte (a 7B LLaVA: ~50 s against ~3.5 s mapped, both with the file
 * cached), the memory is the process's own, and the JVM can back it with transparent huge pages,
 * which the kernel does not do for a mapped file (4 KiB pages: a TLB miss, in a virtual machine a
 * two-level page walk, and a hardware-prefetcher restart per 4 KiB of a streamed row). The mat-vec
 * of a decoded token reads weights on the heap about 15% faster (docs/kernels.md).
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

    /**
     * AUTO's choice for sixteenBitBytes on this machine and JVM. When only the heap is short, the
     * garbage of an earlier load (a model dropped, its copy not yet collected) may be why: collected
     * once, then asked again.
     */
    static WeightPlacement chooseHere(long sixteenBitBytes) {
        long physical = MachineMemory.physicalBytes();
        WeightPlacement p = choose(sixteenBitBytes, physical, MachineMemory.freeHeapBytes());
        if (p == MAP && choose(sixteenBitBytes, physical, Long.MAX_VALUE) == HEAP) {
            System.gc();
            p = choose(sixteenBitBytes, physical, MachineMemory.freeHeapBytes());
        }
        return p;
    }

    /** The name used on the command line and in reports. */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
