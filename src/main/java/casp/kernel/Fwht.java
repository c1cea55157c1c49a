package casp.kernel;

/**
 * Normalised fast Walsh-Hadamard transform for power-of-two lengths: x <- H_n x / sqrt(n), with
 * H_n the Sylvester Hadamard matrix (H_1 = [1], H_2n = [[H, H], [H, -H]]). The normalised
 * transform is orthogonal and its own inverse. In place, O(n log n).
 *
 * <p>Vectorised in {@link FwhtSimd}: butterflies with a stride of at least one vector run two
 * stages per pass over the data (radix 4); the strides inside one vector use lane permutations.
 */
public final class Fwht {
    private Fwht() {}

    private static final boolean VECTOR = VectorSupport.enabled();

    /** Transforms x[off, off + n) in place. n must be a power of two (1 is allowed). */
    public static void transform(float[] x, int off, int n) {
        checkLength(n);
        if (off < 0 || off + n > x.length) throw new IllegalArgumentException("range [" + off + ", " + (off + n) + ") outside the array");
        float scale = (float) (1.0 / Math.sqrt(n));
        if (VECTOR && n >= FwhtSimd.L) FwhtSimd.transform(x, off, n, scale);
        else scalar(x, off, n, scale);
    }

    /** Transforms each of the rows of a [rows, n] (row-major from off) in place, in parallel. */
    public static void transformRows(float[] a, int off, int rows, int n) {
        checkLength(n);
        if (rows < 0 || off < 0 || off + (long) rows * n > a.length) throw new IllegalArgumentException("rows outside the array");
        int tasks = (int) Math.min(rows, Math.max(1, Math.min(Parallel.threads() * 4L, (long) rows * n / 8192)));
        if (tasks <= 1) {
            for (int r = 0; r < rows; r++) transform(a, off + r * n, n);
            return;
        }
        Parallel.forRange(tasks, t -> {
            int r0 = (int) ((long) rows * t / tasks), r1 = (int) ((long) rows * (t + 1) / tasks);
            for (int r = r0; r < r1; r++) transform(a, off + r * n, n);
        });
    }

    private static void checkLength(int n) {
        if (n <= 0 || Integer.bitCount(n) != 1) throw new IllegalArgumentException("FWHT length must be a power of two, got " + n);
    }

    /** Reference-style radix-2 loop, for short rows and machines without usable vectors. */
    private static void scalar(float[] x, int off, int n, float scale) {
        for (int h = 1; h < n; h *= 2) {
            for (int i = 0; i < n; i += 2 * h) {
                for (int j = off + i; j < off + i + h; j++) {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
            }
        }
        for (int i = off; i < off + n; i++) x[i] *= scale;
    }
}
