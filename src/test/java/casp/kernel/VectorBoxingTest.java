package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The hot kernels keep running as vector instructions after vectors of other shapes of the same
 * element type have run in the JVM (as they do in any real run: the AQLM and E8P kernels use
 * 256-bit floats, E8P's decode 64-bit bytes, the 16-bit mat-vec half-width
 * shorts, beside 512-bit float kernels).
 *
 * <p>Why this can break: on JDK 17, C2 turns a Vector API call into an instruction only when it
 * knows the vector's exact class. For some values (a vector just loaded, one merged from two
 * branches) it knows that only from the type profile of the API's shared methods, and that
 * profile holds every shape any code in the JVM used. Once it holds two, the call runs the API's
 * Java fallback, which boxes every vector: twenty times slower and allocating on every step.
 * The float GEMM's micro-kernel did exactly this inside {@code casp compress} on 7B shapes, and
 * the quantized mat-vec boxed its tile totals (a method called on a loop-carried vector: about
 * 125 KB per round here) in every decode step.
 *
 * <p>The probe (in a JVM of its own, see {@link AllocationMeter}) first runs the kernels that use
 * the other shapes, then rounds of each hot kernel, and reports the fewest bytes a round
 * allocated. Boxing allocates kilobytes per call; the kernels themselves allocate nothing but a
 * few task objects of the thread pool.
 */
class VectorBoxingTest {
    /**
     * Per round: the thread pool's task objects of a few GEMM calls stay well under this (the
     * 16-bit mat-mat makes one per tile: ~10 KB); a boxing kernel allocated 1.2 to 198 MB.
     */
    private static final long BOUND = 16 << 10;

    @Test
    void hotKernelsDoNotBoxVectorsAfterOtherShapesRan() throws Exception {
        if (!VectorSupport.enabled()) return; // the scalar build has no vectors to box
        Map<String, Long> bytes = AllocationMeter.inFreshJvm(Probe.class);
        Map<String, Long> boxed = new TreeMap<>();
        bytes.forEach((k, v) -> { if (v > BOUND) boxed.put(k, v); });
        assertTrue(bytes.size() == 20, "probe reported " + bytes);
        assertTrue(boxed.isEmpty(), "bytes allocated per round (boxed vectors) by " + boxed + "; all: " + bytes);
    }

    /** The measurement, run in its own JVM. */
    public static final class Probe {
        public static void main(String[] args) {
            Random rnd = new Random(7);
            otherShapes(rnd);
            AllocationMeter meter = new AllocationMeter();
            // Awkward sizes: full register tiles and ragged edges; beta 0 and 1 in every round,
            // so both store paths of the micro-kernels are compiled together.
            int m = 203, n = 317, k = 251;
            float[] a = random(rnd, m * k), b = random(rnd, k * n), c = new float[m * n];
            report(meter, "sgemm", () -> {
                Gemm.sgemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n);
                Gemm.sgemm(false, true, m, k, n, 0.5f, c, 0, n, b, 0, n, 1f, a, 0, k);
            });
            double[] ad = toDouble(a), bd = toDouble(b), cd = new double[m * n];
            report(meter, "dgemm", () -> {
                Gemm.dgemm(false, false, m, n, k, 1.0, ad, 0, k, bd, 0, n, 0.0, cd, 0, n);
                Gemm.dgemm(false, true, m, k, n, 0.5, cd, 0, n, bd, 0, n, 1.0, ad, 0, k);
            });
            int rows = 96, cols = 515;
            float[] x = random(rnd, rows * cols);
            double[] h = new double[cols * cols];
            report(meter, "hessian", () -> Syrk.accumulate(x, 0, cols, rows, cols, h, 0, cols));
            float[] scale = new float[cols], zero = new float[cols], q = new float[cols];
            java.util.Arrays.fill(scale, 0.1f);
            java.util.Arrays.fill(zero, 2f);
            byte[] codes = new byte[cols];
            report(meter, "quantize", () -> {
                for (int r = 0; r < rows; r++) QuantOps.quantize(x, r * cols, cols, scale, zero, 0, 3f, codes, 0, q, 0);
            });
            float[] e = new float[cols];
            report(meter, "exp", () -> {
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(x, r * cols, e, 0, cols);
                    Exp.exp(e, 0, cols);
                }
            });
            float[] y = new float[rows];
            report(meter, "matvec", () -> Gemm.matVec(rows, cols, x, 0, cols, e, 0, y, 0));
            // 16-bit weights as a 7B model's are read: bf16 from an off-heap little-endian buffer
            int hr = 320, hc = 1024, tokens = 7;
            java.nio.ByteBuffer hb = java.nio.ByteBuffer.allocateDirect(2 * hr * hc).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < hr * hc; i++) hb.putShort(2 * i, (short) (Float.floatToRawIntBits((float) rnd.nextGaussian()) >>> 16));
            HalfMatrix bf16 = HalfMatrix.of(hr, hc, hb, true);
            float[] hx = random(rnd, tokens * hc), hy = new float[tokens * hr];
            report(meter, "bf16-matvec", () -> bf16.matvec(hx, 0, hy, 0));
            // and from a Java array (--weights heap)
            short[] hs = new short[hr * hc];
            hb.asShortBuffer().get(hs);
            HalfMatrix bf16Heap = HalfMatrix.of(hr, hc, hs, true);
            report(meter, "bf16-heap-matvec", () -> bf16Heap.matvec(hx, 0, hy, 0));
            report(meter, "bf16-heap-matmul", () -> bf16Heap.matmul(hx, 0, tokens, hy, 0));
            report(meter, "bf16-matmul", () -> bf16.matmul(hx, 0, tokens, hy, 0));
            // fp16 with ~0.24% subnormals, as real weights of std 0.02 have (another branch of its kernel)
            java.nio.ByteBuffer fb = java.nio.ByteBuffer.allocateDirect(2 * hr * hc).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < hr * hc; i++) fb.putShort(2 * i, Fp16.fromFloat((float) rnd.nextGaussian() * 0.02f));
            HalfMatrix fp16 = HalfMatrix.of(hr, hc, fb, false);
            report(meter, "fp16-matvec", () -> fp16.matvec(hx, 0, hy, 0));
            report(meter, "fp16-matmul", () -> fp16.matmul(hx, 0, tokens, hy, 0));
            // the quantized decode's mat-vec, each code width (row-lane layout)
            for (int bits : new int[] {2, 3, 4, 8}) {
                QuantizedMatrix qm = QuantizedMatrix.random(hr, hc, bits, 128, bits);
                report(meter, bits + "bit-matvec", () -> qm.matvec(hx, 0, hy, 0));
            }
            // and the quantized prefill's mat-mat (the register tile on blocks of W^T)
            QuantizedMatrix q2 = QuantizedMatrix.random(hr, hc, 2, 128, 2);
            float[] px = random(rnd, 13 * hc), py = new float[13 * hr];
            report(meter, "2bit-matmul", () -> q2.matmul(px, 0, 13, py, 0));
            // QuIP#'s decode: E8P codes, Hadamard transforms on both sides, one row
            short[] e8 = new short[hr * hc / 8];
            for (int i = 0; i < e8.length; i++) e8[i] = (short) rnd.nextInt(1 << 16);
            byte[] signIn = new byte[hc], signOut = new byte[hr];
            java.util.Arrays.fill(signIn, (byte) 1);
            java.util.Arrays.fill(signOut, (byte) -1);
            E8pMatrix e8p = new E8pMatrix(hr, hc, hr, hc, e8, signIn, signOut, 0.03f);
            E8pMatrix.Scratch e8s = new E8pMatrix.Scratch();
            report(meter, "e8p-matvec", () -> e8p.multiply(hx, 0, 1, hy, 0, e8s));
            E8p.Scratch es = new E8p.Scratch();
            float[] eq = new float[E8p.DIM];
            report(meter, "e8p-encode", () -> {
                for (int i = 0; i + E8p.DIM <= cols; i += E8p.DIM) E8p.encode(x, i, es, eq, 0);
            });
            report(meter, "dot", () -> {
                for (int r = 0; r < rows; r++) y[r] = Blas1.dot(cols, x, r * cols, e, 0);
            });
        }

        /** Kernels that use vector shapes other than the preferred one. */
        private static void otherShapes(Random rnd) {
            float[] x = random(rnd, 4096);
            double[] acc = new double[4096];
            E8p.Scratch s = new E8p.Scratch();
            float[] q = new float[E8p.DIM];
            short[] half = new short[256 * 512];
            for (int i = 0; i < half.length; i++) half[i] = Fp16.fromFloat(rnd.nextFloat() - 0.5f);
            HalfMatrix hm = HalfMatrix.of(256, 512, half, false);
            char[] codes = new char[64 * 8 * 2];
            for (int i = 0; i < codes.length; i++) codes[i] = (char) rnd.nextInt(256);
            float[] books = random(rnd, 2 * 256 * 8), scales = random(rnd, 64), y = new float[256];
            short[] e8 = new short[256 * 512 / 8];
            for (int i = 0; i < e8.length; i++) e8[i] = (short) rnd.nextInt(1 << 16);
            byte[] signIn = new byte[512], signOut = new byte[256];
            java.util.Arrays.fill(signIn, (byte) 1);
            java.util.Arrays.fill(signOut, (byte) 1);
            E8pMatrix e8p = new E8pMatrix(256, 512, 256, 512, e8, signIn, signOut, 0.03f);
            E8pMatrix.Scratch e8s = new E8pMatrix.Scratch();
            long end = System.nanoTime() + 4_000_000_000L;
            while (System.nanoTime() < end) {
                Blas1.addWidened(4096, x, 0, acc, 0);
                for (int i = 0; i + E8p.DIM <= 512; i += E8p.DIM) E8p.encode(x, i, s, q, 0);
                hm.matvec(x, 0, y, 0);
                AqlmCodebookMatvec.matvec(codes, 64, 8, 2, books, 256, 8, scales, x, 0, y, 0);
                e8p.multiply(x, 0, 1, y, 0, e8s);
            }
        }

        private static void report(AllocationMeter meter, String name, Runnable round) {
            AllocationMeter.report(name, meter.settledBytes(round, 20_000, BOUND));
        }

        private static float[] random(Random rnd, int n) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) v[i] = (float) rnd.nextGaussian();
            return v;
        }

        private static double[] toDouble(float[] v) {
            double[] d = new double[v.length];
            for (int i = 0; i < v.length; i++) d[i] = v[i];
            return d;
        }
    }
}
