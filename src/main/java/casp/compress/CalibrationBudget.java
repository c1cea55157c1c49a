package casp.compress;

import casp.io.BadInputException;

/**
 * Refuses calibration sizes the machine cannot hold before any work: text calibration keeps
 * --samples windows of --seq-len tokens as float32 activations of the hidden width, so
 * samples x seq-len x hidden x 4 bytes must fit the Java heap. (LLaVA calibration takes at most
 * the records of its file, so its count is bounded by the file.)
 */
public final class CalibrationBudget {
    private CalibrationBudget() {}

    public static void checkText(int samples, int seqLen, int hidden) {
        checkText(samples, seqLen, hidden, Runtime.getRuntime().maxMemory());
    }

    static void checkText(int samples, int seqLen, int hidden, long heapBytes) {
        double bytes = (double) samples * seqLen * hidden * Float.BYTES; // a double cannot overflow here
        if (bytes > heapBytes)
            throw new BadInputException("--samples " + samples + " x --seq-len " + seqLen + " tokens x hidden " + hidden
                    + " x 4 bytes = " + String.format(java.util.Locale.ROOT, "%.0f", bytes / (1 << 20))
                    + " MiB of calibration activations, more than the Java heap (" + heapBytes / (1 << 20)
                    + " MiB); lower --samples or --seq-len");
    }
}
