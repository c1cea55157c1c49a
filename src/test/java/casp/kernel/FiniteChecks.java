package casp.kernel;

import java.util.SplittableRandom;

/**
 * Checks of {@link Finite} against a plain loop over Float.isFinite, at awkward lengths and with
 * the bad value at every kind of position (first, inside a vector, in the scalar tail), for
 * {@link VectorWidths} to run at every vector width.
 */
public final class FiniteChecks {
    private FiniteChecks() {}

    static final String[] ALL = {"floatsMatchNaiveScan", "halfsMatchNaiveScan"};
    static final int[] SIZES = {0, 1, 7, 16, 17, 33, 129, 1000};

    public static void floatsMatchNaiveScan() {
        SplittableRandom r = new SplittableRandom(7);
        float[] bad = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.intBitsToFloat(0x7fc00001)};
        for (int n : SIZES) {
            float[] a = new float[n + 3];
            for (int i = 0; i < a.length; i++) a[i] = (float) (r.nextGaussian() * (i % 5 == 0 ? 1e37 : 1));
            a[n] = Float.NaN; // past the length: must not be seen
            expect(-1, Finite.firstNonFinite(a, n), "clean n=" + n);
            for (int pos = 0; pos < n; pos += Math.max(1, n / 9)) {
                for (float b : bad) {
                    float keep = a[pos];
                    a[pos] = b;
                    expect(pos, Finite.firstNonFinite(a, n), "n=" + n + " bad " + b + " at " + pos);
                    a[pos] = keep;
                }
            }
        }
        float[] max = {Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, -0f};
        expect(-1, Finite.firstNonFinite(max, max.length), "extremes are finite");
    }

    public static void halfsMatchNaiveScan() {
        SplittableRandom r = new SplittableRandom(11);
        for (boolean bf16 : new boolean[]{false, true}) {
            int mask = bf16 ? 0x7f80 : 0x7c00;
            for (int n : SIZES) {
                short[] h = new short[n + 2];
                for (int i = 0; i < h.length; i++) {
                    int v;
                    do v = r.nextInt(0x10000); while ((v & mask) == mask);
                    h[i] = (short) v;
                }
                h[n] = (short) mask; // past the length
                expect(-1, Finite.firstNonFinite(h, n, bf16), (bf16 ? "bf16" : "fp16") + " clean n=" + n);
                for (int pos = 0; pos < n; pos += Math.max(1, n / 9)) {
                    for (int b : new int[]{mask, mask | 1, mask | 0x8000, 0xffff}) {
                        short keep = h[pos];
                        h[pos] = (short) b;
                        expect(pos, Finite.firstNonFinite(h, n, bf16), (bf16 ? "bf16" : "fp16") + " n=" + n + " bad at " + pos);
                        h[pos] = keep;
                    }
                }
            }
        }
    }

    private static void expect(long want, long got, String what) {
        if (want != got) throw new AssertionError(what + ": expected " + want + ", got " + got);
    }
}
