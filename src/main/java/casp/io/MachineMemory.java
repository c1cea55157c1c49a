package casp.io;

import java.lang.management.ManagementFactory;

/** What the machine and this JVM have of memory, for the defaults that depend on it. */
public final class MachineMemory {
    private MachineMemory() {}

    /** The machine's physical memory in bytes, 0 when the JVM cannot tell. */
    public static long physicalBytes() {
        try {
            return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                    ? os.getTotalMemorySize() : 0;
        } catch (LinkageError | RuntimeException e) { // a runtime without the jdk.management module
            return 0;
        }
    }

    /** Heap this JVM can still grow into: its maximum less what is allocated now (live or not). */
    public static long freeHeapBytes() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }
}
