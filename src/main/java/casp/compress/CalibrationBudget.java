package casp.compress;

import casp.io.BadInputException;
import casp.tensor.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Refuses calibration sizes the machine cannot hold before any work: text calibration keeps
 * --samples windows of --seq-len tokens as activations of the hidden width (4 bytes a value for
 * float32, 2 for bfloat16). The {@link ActivationStore} keeps them in memory up to its budget and
 * spills the rest to a scratch file beside the output, so they must fit the run's memory limit
 * plus the free space of that disk. (LLaVA calibration takes at most the records of its file, so
 * its count is bounded by the file.)
 */
public final class CalibrationBudget {
    private CalibrationBudget() {}

    /** Checks against the Java heap alone (activations kept in memory as float32). */
    public static void checkText(int samples, int seqLen, int hidden) {
        checkText(samples, seqLen, hidden, DType.F32, Runtime.getRuntime().maxMemory(), 0);
    }

    static void checkText(int samples, int seqLen, int hidden, long heapBytes) {
        checkText(samples, seqLen, hidden, DType.F32, heapBytes, 0);
    }

    /**
     * Refuses samples x seq-len x hidden activations of dtype over memoryBytes (the run's memory
     * limit) plus spillBytes (the free space the store may spill to).
     */
    public static void checkText(int samples, int seqLen, int hidden, DType dtype, long memoryBytes, long spillBytes) {
        int element = dtype == DType.BF16 ? 2 : Float.BYTES;
        double bytes = (double) samples * seqLen * hidden * element; // a double cannot overflow here
        double room = (double) memoryBytes + spillBytes;
        if (bytes > room)
            throw new BadInputException("--samples " + samples + " x --seq-len " + seqLen + " tokens x hidden " + hidden
                    + " x " + element + " bytes = " + String.format(java.util.Locale.ROOT, "%.0f", bytes / (1 << 20))
                    + " MiB of calibration activations, more than the memory limit (" + memoryBytes / (1 << 20)
                    + " MiB)" + (spillBytes > 0 ? " and the free disk space for spilling them (" + spillBytes / (1 << 20) + " MiB)" : "")
                    + "; lower --samples or --seq-len");
    }

    /**
     * The free space of the disk a file at path would be written to (its nearest existing folder;
     * for a run's --out, where its activations spill); 0 when unknown.
     */
    static long freeDisk(Path path) {
        Path dir = path.toAbsolutePath().getParent();
        while (dir != null && !Files.exists(dir)) dir = dir.getParent();
        if (dir == null) return 0;
        try {
            return Files.getFileStore(dir).getUsableSpace();
        } catch (IOException | SecurityException e) {
            return 0;
        }
    }
}
