package casp.kernel;

/**
 * Start-up check of whether this CPU multiplies denormal floats as fast as normal ones. Java
 * keeps IEEE denormals (no flush-to-zero), and CPUs differ: AMD Zen cores take denormal operands
 * in hardware at full speed, while many Intel cores run a microcode assist costing about a hundred
 * cycles per operation. The 2-bit mat-vec kernel that reads codes as denormals
 * ({@link RowLaneSimd}) is only worth it in the first case.
 *
 * <p>The probe times the same multiply-add chain over normal and over denormal operands, a few
 * rounds interleaved, and compares the best times: an assist shows up as a ratio of 10 or more,
 * full speed as about 1, so the threshold of 2 is far from both and machine noise does not flip it.
 * It takes a few milliseconds once per process.
 */
final class DenormalProbe {
    private DenormalProbe() {}

    private static final int N = 4096;
    private static final int ROUNDS = 12;
    /** Best denormal time over best normal time above which denormals count as slow. */
    private static final double SLOW_RATIO = 2.0;

    /** True when denormal operands cost less than {@link #SLOW_RATIO} times normal ones. */
    static boolean fast() {
        return ratio() < SLOW_RATIO;
    }

    /** Best time over denormal operands / best time over normal operands. */
    static double ratio() {
        float[] normal = new float[N];
        float[] denormal = new float[N];
        for (int i = 0; i < N; i++) {
            normal[i] = 1f + (i & 15) * 0x1p-4f;
            denormal[i] = Float.intBitsToFloat(1 + (i & 0xffff)); // 2^-149 .. 2^-133: all denormal
        }
        float scale = 0x1p100f; // keeps the denormal products normal, as in the kernel
        long bestNormal = Long.MAX_VALUE, bestDenormal = Long.MAX_VALUE;
        float sink = 0;
        for (int round = 0; round < ROUNDS; round++) {
            long t0 = System.nanoTime();
            sink += chain(normal, 0x1p-100f);
            long t1 = System.nanoTime();
            sink += chain(denormal, scale);
            long t2 = System.nanoTime();
            if (round >= 4) { // the first rounds run in the interpreter and C1
                bestNormal = Math.min(bestNormal, t1 - t0);
                bestDenormal = Math.min(bestDenormal, t2 - t1);
            }
        }
        if (sink == 42f) System.out.print(""); // keeps the sums alive
        return (double) bestDenormal / Math.max(1, bestNormal);
    }

    /** Four independent multiply-add chains over a, repeated enough to be compiled and timed. */
    private static float chain(float[] a, float m) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int rep = 0; rep < 16; rep++) {
            for (int i = 0; i < N; i += 4) {
                s0 += a[i] * m;
                s1 += a[i + 1] * m;
                s2 += a[i + 2] * m;
                s3 += a[i + 3] * m;
            }
        }
        return s0 + s1 + s2 + s3;
    }
}
