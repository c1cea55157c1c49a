package casp.kernel;

/**
 * Orthogonal Hadamard transforms of any length that has a known Hadamard matrix, for QuIP#'s
 * incoherence processing (ALGORITHMS.md section 7.1): x <- T x with T = (H_p (x) M_K) / sqrt(n)
 * for n = p K, H_p the Sylvester matrix of a power of two p (applied as a fast Walsh-Hadamard
 * transform) and M_K a +-1 Hadamard matrix of order K stored dense (K = 1 for powers of two).
 *
 * <p>M_K comes from Paley's constructions for primes q: type I gives order q + 1 for q = 3 mod 4
 * (12, 20, 24, 44, ...), type II order 2 (q + 1) for q = 1 mod 4 (12, 28, 36, 60, ...). Among the
 * ways to write n = 2^j K the smallest constructible K is used. Lengths with none (e.g. 172 =
 * 4 x 43: QuIP# stores a matrix of order 172 found by search, which we do not have) are padded
 * by the caller to {@link #paddedSize} with inputs that are zero.
 *
 * <p>Layout of x as a [p, K] row-major matrix X (x[a K + b] = X[a, b]): T x = H_p X M_K^T / sqrt(n),
 * so the dense factor acts on each contiguous row and the butterflies combine whole rows.
 * Instances are immutable and thread-safe; scratch space is passed in or allocated per call.
 */
public final class Hadamard {
    private final int n, p, k;
    /** M_K / sqrt(K), row-major [K, K]; null when K = 1. */
    private final float[] m;
    /** Its transpose. */
    private final float[] mt;

    private Hadamard(int n, int k, float[] m) {
        this.n = n;
        this.k = k;
        this.p = n / k;
        this.m = m;
        if (m == null) {
            this.mt = null;
        } else {
            float[] t = new float[k * k];
            for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) t[j * k + i] = m[i * k + j];
            this.mt = t;
        }
    }

    /** The transform of length n; throws IllegalArgumentException when n has no known construction. */
    public static Hadamard of(int n) {
        int k = denseOrder(n);
        if (k < 0) {
            throw new IllegalArgumentException("no Hadamard matrix of order " + n + " can be built here (n = 2^j K needs K = 1 or a "
                    + "Paley order); pad to " + paddedSize(n, 1));
        }
        float[] m = null;
        if (k > 1) {
            byte[] h = matrix(k);
            float s = (float) (1 / Math.sqrt(k));
            m = new float[k * k];
            for (int i = 0; i < m.length; i++) m[i] = h[i] * s;
        }
        return new Hadamard(n, k, m);
    }

    /** Length of the transform. */
    public int length() { return n; }

    /** Order of the dense factor (1 for a power of two). */
    public int denseOrder() { return k; }

    /**
     * Largest dense factor used: applying it costs K multiply-adds per element, and a big Paley
     * order (11008 = 2 x 5504) would cost far more than padding to a length with a small one.
     */
    public static final int MAX_DENSE = 256;

    /**
     * Order K of the dense factor used for length n (1 for a power of two), or -1 when no Hadamard
     * matrix of order n with a dense factor of at most {@link #MAX_DENSE} is known to this class.
     */
    public static int denseOrder(int n) {
        if (n < 1) return -1;
        int odd = n >> Integer.numberOfTrailingZeros(n);
        if (odd == 1) return 1;
        for (long kk = odd; kk <= Math.min(n, MAX_DENSE); kk *= 2) {
            int c = (int) kk;
            if (paleyOne(c) || paleyTwo(c)) return c;
        }
        return -1;
    }

    /** Whether a transform of length n exists here. */
    public static boolean supported(int n) {
        return denseOrder(n) > 0;
    }

    /** The smallest n' >= n that is a multiple of {@code multiple} and {@link #supported}. */
    public static int paddedSize(int n, int multiple) {
        if (n < 1 || multiple < 1) throw new IllegalArgumentException("bad length " + n + " or multiple " + multiple);
        long c = ((long) n + multiple - 1) / multiple * multiple;
        for (; c <= Integer.MAX_VALUE; c += multiple) if (supported((int) c)) return (int) c;
        throw new IllegalArgumentException("no Hadamard length at or above " + n);
    }

    private static boolean paleyOne(int k) {
        int q = k - 1;
        return q >= 3 && q % 4 == 3 && isPrime(q);
    }

    private static boolean paleyTwo(int k) {
        if (k % 2 != 0) return false;
        int q = k / 2 - 1;
        return q >= 5 && q % 4 == 1 && isPrime(q);
    }

    private static boolean isPrime(int q) {
        if (q < 2) return false;
        for (int d = 2; (long) d * d <= q; d++) if (q % d == 0) return false;
        return true;
    }

    /**
     * A +-1 Hadamard matrix of order k (H H^T = k I), row-major: Sylvester for powers of two,
     * Paley I or II otherwise, Sylvester doublings of those. Throws when k has no construction.
     */
    public static byte[] matrix(int k) {
        if (k == 1) return new byte[]{1};
        if (paleyOne(k)) return paleyOneMatrix(k - 1);
        if (paleyTwo(k)) return paleyTwoMatrix(k / 2 - 1);
        if (k % 2 == 0) {
            byte[] h = matrix(k / 2);
            int half = k / 2;
            byte[] out = new byte[k * k];
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < half; j++) {
                    byte v = h[i * half + j];
                    out[i * k + j] = v;
                    out[i * k + j + half] = v;
                    out[(i + half) * k + j] = v;
                    out[(i + half) * k + j + half] = (byte) -v;
                }
            }
            return out;
        }
        throw new IllegalArgumentException("no Hadamard matrix of order " + k + " is built here");
    }

    /** Legendre symbol of a modulo the odd prime q, as -1, 0, 1. */
    private static int chi(int a, int q) {
        a = Math.floorMod(a, q);
        if (a == 0) return 0;
        long r = 1, b = a;
        for (int e = (q - 1) / 2; e > 0; e >>= 1) { // Euler's criterion: a^((q-1)/2) mod q
            if ((e & 1) != 0) r = r * b % q;
            b = b * b % q;
        }
        return r == 1 ? 1 : -1;
    }

    /** Paley I, q = 3 mod 4: H = I + S with S = [[0, 1^T], [-1, Q]], Q[i][j] = chi(j - i) (skew). */
    private static byte[] paleyOneMatrix(int q) {
        int k = q + 1;
        byte[] h = new byte[k * k];
        for (int j = 1; j < k; j++) {
            h[j] = 1;
            h[j * k] = -1;
        }
        for (int i = 0; i < q; i++) for (int j = 0; j < q; j++) h[(i + 1) * k + j + 1] = (byte) chi(j - i, q);
        for (int i = 0; i < k; i++) h[i * k + i] += 1;
        return h;
    }

    /**
     * Paley II, q = 1 mod 4: the symmetric conference matrix C = [[0, 1^T], [1, Q]] of order q + 1 with
     * each 0 replaced by [[1, -1], [-1, -1]] and each +-1 by +-[[1, 1], [1, -1]].
     */
    private static byte[] paleyTwoMatrix(int q) {
        int c = q + 1, k = 2 * c;
        byte[] h = new byte[k * k];
        for (int i = 0; i < c; i++) {
            for (int j = 0; j < c; j++) {
                int v = i == j ? 0 : i == 0 || j == 0 ? 1 : chi(j - i, q);
                int r = 2 * i * k + 2 * j;
                if (v == 0) {
                    h[r] = 1; h[r + 1] = -1; h[r + k] = -1; h[r + k + 1] = -1;
                } else {
                    h[r] = (byte) v; h[r + 1] = (byte) v; h[r + k] = (byte) v; h[r + k + 1] = (byte) -v;
                }
            }
        }
        return h;
    }

    /** x[off, off + n) <- T x. */
    public void apply(float[] x, int off) {
        apply(x, off, false, k > 1 ? new float[n] : null);
    }

    /** x[off, off + n) <- T^T x (= T^-1 x). */
    public void applyTranspose(float[] x, int off) {
        apply(x, off, true, k > 1 ? new float[n] : null);
    }

    /**
     * x <- T x, or T^T x with transpose; scratch holds at least n floats (may be null when K = 1).
     * The butterflies over whole rows are left unnormalised and the dense factor carries 1/sqrt(K);
     * the 1/sqrt(p) of the fast part is applied by {@link Fwht} when K = 1, else at the end.
     */
    public void apply(float[] x, int off, boolean transpose, float[] scratch) {
        if (off < 0 || off + n > x.length) throw new IllegalArgumentException("range outside the array");
        if (k == 1) {
            Fwht.transform(x, off, n);
            return;
        }
        dense(x, off, 1, transpose, scratch);
        butterflies(x, off);
    }

    /** Applies T (or T^T) to each of the rows of a [rows, n] (row-major from off), in parallel. */
    public void applyRows(float[] a, int off, int rows, boolean transpose) {
        if (rows < 0 || off < 0 || off + (long) rows * n > a.length) throw new IllegalArgumentException("rows outside the array");
        if (k == 1) {
            Fwht.transformRows(a, off, rows, n);
            return;
        }
        dense(a, off, rows, transpose, new float[rows * n]);
        if (p == 1) return;
        int tasks = (int) Math.min(rows, Math.max(1, Math.min(Parallel.threads() * 4L, (long) rows * n / 16384)));
        Parallel.forRange(tasks, t -> {
            int r0 = (int) ((long) rows * t / tasks), r1 = (int) ((long) rows * (t + 1) / tasks);
            for (int r = r0; r < r1; r++) butterflies(a, off + r * n);
        });
    }

    /**
     * The dense factor on every K-long piece of rows vectors of length n: viewed as a
     * [rows p, K] matrix X, X <- X D^T (D = M_K / sqrt(K) or its transpose), one GEMM through tmp.
     */
    private void dense(float[] x, int off, int rows, boolean transpose, float[] tmp) {
        Gemm.sgemm(false, true, rows * p, k, k, 1f, x, off, k, transpose ? mt : m, 0, k, 0f, tmp, 0, k);
        System.arraycopy(tmp, 0, x, off, rows * n);
    }

    /** The Sylvester part: butterflies over whole K-long pieces of one vector, then 1/sqrt(p). */
    private void butterflies(float[] x, int off) {
        if (p == 1) return;
        for (int h = 1; h < p; h *= 2) {
            for (int i = 0; i < p; i += 2 * h) {
                for (int a = i; a < i + h; a++) {
                    int r0 = off + a * k, r1 = r0 + h * k;
                    for (int j = 0; j < k; j++) {
                        float u = x[r0 + j], v = x[r1 + j];
                        x[r0 + j] = u + v;
                        x[r1 + j] = u - v;
                    }
                }
            }
        }
        VectorOps.scale(x, off, n, (float) (1 / Math.sqrt(p)));
    }
}
