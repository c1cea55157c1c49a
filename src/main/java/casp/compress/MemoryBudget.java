package casp.compress;

import casp.io.BadInputException;
import casp.io.MachineMemory;
import casp.io.ModelConfig;

import java.util.Locale;

/**
 * How much memory the calibration activations of a compression run may hold before they spill to
 * a scratch file: the run's memory limit (--max-memory, default the smaller of the JVM's maximum
 * heap and the machine's memory) less what is resident already (the model without its decoder,
 * measured as used heap) and less an estimate of the working set of one block:
 * <ul>
 *   <li>the block's weights in float32 twice (the original and the dequantized result side by side);</li>
 *   <li>the float64 Hessians of all four input groups (q/k/v, o, gate/up, down: the CASP measurement
 *       holds them together), and two more of the widest input (the quantizer's factor and inverse);</li>
 *   <li>the layer's buffers for the longest sample ([tokens, intermediate] x 3, [tokens, hidden] x 6)
 *       and two sample-sized scratch arrays.</li>
 * </ul>
 * A quarter of the limit is kept free for the collector: G1 does not move arrays larger than half a
 * region (a 7B block's Hessians and samples), so the heap fragments; with a tenth kept free, CASP on
 * 128 LLaVA conversations of a 7B twin does not fit a 10 GB heap. The estimate is deliberately
 * generous: spilling costs little (a sequential read and write of the activations per block pass),
 * running out of heap costs the run.
 */
public final class MemoryBudget {
    private MemoryBudget() {}

    /** The memory limit: the given bytes, or (0) the smaller of max heap and physical memory. */
    public static long limit(long requested) {
        if (requested > 0) return requested;
        long heap = Runtime.getRuntime().maxMemory();
        long physical = MachineMemory.physicalBytes();
        return physical > 0 ? Math.min(heap, physical) : heap;
    }

    /** Working-set estimate of one block with samples of up to maxTokens tokens (bytes). */
    public static long blockWorkingSet(ModelConfig.TextConfig c, int maxTokens) {
        long d = c.hiddenSize(), inter = c.intermediateSize(), q = c.qDim(), kv = c.kvDim();
        long blockWeights = d * q + 2 * d * kv + q * d + 3 * d * inter;
        long widest = Math.max(Math.max(d, q), inter);
        long hessians = (2 * d * d + q * q + inter * inter + 2 * widest * widest) * 8;
        long buffers = (long) maxTokens * (3 * inter + 6 * Math.max(d, q) + 2 * kv) * 4;
        long scratch = 2L * maxTokens * d * 4;
        return 2 * blockWeights * 4 + hessians + buffers + scratch;
    }

    /**
     * Bytes the activations may hold in memory: limit - resident - working set - limit / 4 (at
     * least 0: everything spills).
     */
    public static long activationBudget(long limit, long resident, long workingSet) {
        return Math.max(0, limit - resident - workingSet - limit / 4);
    }

    /** The heap in use now, after a collection (what the loaded model holds). */
    public static long residentHeap() {
        System.gc();
        Runtime r = Runtime.getRuntime();
        return r.totalMemory() - r.freeMemory();
    }

    /**
     * Parses a size: a number of bytes with an optional suffix k, m, g, t (powers of 1024; "12g",
     * "512M", "1.5G"). flag names the option in the error message.
     */
    public static long parse(String text, String flag) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("b")) t = t.substring(0, t.length() - 1);
        if (t.endsWith("i")) t = t.substring(0, t.length() - 1);
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'k' -> unit = 1L << 10;
                case 'm' -> unit = 1L << 20;
                case 'g' -> unit = 1L << 30;
                case 't' -> unit = 1L << 40;
                default -> { }
            }
            if (unit > 1) t = t.substring(0, t.length() - 1);
        }
        double v;
        try {
            v = Double.parseDouble(t);
        } catch (NumberFormatException e) {
            throw new BadInputException(flag + " must be a size such as 12g or 512m, got '" + text + "'");
        }
        if (!(v > 0) || v * unit > Long.MAX_VALUE / 2)
            throw new BadInputException(flag + " must be a positive size such as 12g or 512m, got '" + text + "'");
        return (long) (v * unit);
    }
}
