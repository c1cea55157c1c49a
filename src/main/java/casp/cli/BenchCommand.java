package casp.cli;

import casp.io.BadInputException;
import casp.kernel.Cholesky;
import casp.kernel.Gemm;
import casp.kernel.Syrk;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code casp bench <kernel>}: times one kernel and prints the median of several runs after
 * warm-up, as text or (with --json) as one JSON object with the keys {@code op}, the sizes,
 * {@code seconds} and the rate ({@code gflops}, computed the way ../shared/bench/numpy_ref.py
 * computes it, so the two can be divided).
 *
 * <p>To add a kernel: write a nested (or separate) {@code @Command} class that takes
 * {@code @Mixin BenchTiming.Options timing}, builds its inputs, and calls
 * {@link BenchTiming.Options#measure} and {@link BenchTiming.Options#report}; then list it in
 * {@code subcommands} below.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Time a kernel (median of several runs after warm-up).",
        subcommands = {
                BenchCommand.GemmBench.class,
                BenchCommand.SyrkBench.class,
                BenchCommand.CholBench.class,
                BenchDecodeCommand.class,
                BenchGptqCommand.class,
                BenchRsvdCommand.class,
                BenchSvdCommand.class,
                BenchMatvecCommand.class,
                BenchRegressCommand.class,
        })
public final class BenchCommand implements Runnable {

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    /** Checks a size flag: positive, and the arrays it implies fit in a Java array. */
    static int positive(String flag, int v) {
        if (v <= 0) throw new BadInputException(flag + " must be positive, got " + v);
        return v;
    }

    static void fits(String flags, long elements) {
        if (elements > Integer.MAX_VALUE - 16) {
            throw new BadInputException(flags + " too large: a matrix of " + elements + " elements does not fit in a Java array");
        }
    }

    static float[] random(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble();
        return x;
    }

    /** {@code bench gemm}: C = A B in float32, 2 m n k flops. */
    @Command(name = "gemm", mixinStandardHelpOptions = true, description = "SGEMM C = A B (A [m,k], B [k,n]), 2mnk flops.")
    public static final class GemmBench implements Runnable {
        @Mixin
        BenchTiming.Options timing;

        @Option(names = "--n", defaultValue = "2048", description = "Columns of C (default ${DEFAULT-VALUE}); also m and k unless given.")
        int n;

        @Option(names = "--m", description = "Rows of C (default: n).")
        Integer m;

        @Option(names = "--k", description = "Inner dimension (default: n).")
        Integer k;

        @Option(names = "--trans-a", description = "Use A stored transposed.")
        boolean transA;

        @Option(names = "--trans-b", description = "Use B stored transposed.")
        boolean transB;

        @Override
        public void run() {
            int nn = positive("--n", n), mm = positive("--m", m == null ? n : m), kk = positive("--k", k == null ? n : k);
            fits("--m/--k", (long) mm * kk);
            fits("--k/--n", (long) kk * nn);
            fits("--m/--n", (long) mm * nn);
            SplittableRandom r = new SplittableRandom(0);
            float[] a = random(r, mm * kk), b = random(r, kk * nn), c = new float[mm * nn];
            double s = timing.measure(() -> Gemm.sgemm(transA, transB, mm, nn, kk, 1f,
                    a, 0, transA ? mm : kk, b, 0, transB ? kk : nn, 0f, c, 0, nn));
            Map<String, Object> sizes = new LinkedHashMap<>();
            sizes.put("m", mm);
            sizes.put("n", nn);
            sizes.put("k", kk);
            timing.report("gemm", sizes, s, "gflops", 2.0 * mm * nn * kk / s / 1e9);
        }
    }

    /** {@code bench syrk}: the Hessian accumulation H += X^T X into float64, tokens d^2 flops (as numpy_ref). */
    @Command(name = "syrk", mixinStandardHelpOptions = true,
            description = "Hessian accumulation H += X^T X (X [tokens, dim] float32, H float64); rate = tokens*dim^2 flops, as numpy_ref.py counts it.")
    public static final class SyrkBench implements Runnable {
        @Mixin
        BenchTiming.Options timing;

        @Option(names = "--tokens", defaultValue = "8192", description = "Rows of X (default ${DEFAULT-VALUE}).")
        int tokens;

        @Option(names = "--dim", defaultValue = "1024", description = "Columns of X (default ${DEFAULT-VALUE}).")
        int dim;

        @Option(names = "--float", description = "Time the float32 lower-triangle SYRK instead of the float64 accumulation.")
        boolean float32;

        @Override
        public void run() {
            int t = positive("--tokens", tokens), d = positive("--dim", dim);
            fits("--tokens/--dim", (long) t * d);
            fits("--dim", (long) d * d);
            float[] x = new float[t * d];
            SplittableRandom r = new SplittableRandom(0);
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
            double s;
            if (float32) {
                float[] c = new float[d * d];
                s = timing.measure(() -> Syrk.ssyrkLower(t, d, 1f, x, 0, d, 0f, c, 0, d));
            } else {
                double[] h = new double[d * d];
                s = timing.measure(() -> Syrk.accumulate(x, 0, d, t, d, h, 0, d));
            }
            Map<String, Object> sizes = new LinkedHashMap<>();
            sizes.put("tokens", t);
            sizes.put("dim", d);
            sizes.put("precision", float32 ? "float32" : "float64-accumulator");
            timing.report("syrk", sizes, s, "gflops", (double) t * d * d / s / 1e9);
        }
    }

    /** {@code bench chol}: Cholesky of an SPD matrix, n^3/3 flops. */
    @Command(name = "chol", mixinStandardHelpOptions = true,
            description = "Cholesky factorisation of an n x n SPD matrix (float64 unless --float); n^3/3 flops. Includes copying the input, as numpy's does.")
    public static final class CholBench implements Runnable {
        @Mixin
        BenchTiming.Options timing;

        @Option(names = "--n", defaultValue = "2048", description = "Order of the matrix (default ${DEFAULT-VALUE}).")
        int n;

        @Option(names = "--float", description = "Factor in float32 instead of float64.")
        boolean float32;

        @Override
        public void run() {
            int nn = positive("--n", n);
            fits("--n", (long) nn * nn);
            // H = X^T X + n I with X [2n, n] standard normal-ish, like numpy_ref.py
            SplittableRandom r = new SplittableRandom(0);
            float[] x = new float[2 * nn * nn];
            for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
            double[] h = new double[nn * nn];
            Syrk.accumulate(x, 0, nn, 2 * nn, nn, h, 0, nn);
            for (int i = 0; i < nn; i++) h[i * nn + i] += nn;
            double s;
            if (float32) {
                float[] hf = new float[nn * nn], work = new float[nn * nn];
                for (int i = 0; i < h.length; i++) hf[i] = (float) h[i];
                s = timing.measure(() -> {
                    System.arraycopy(hf, 0, work, 0, hf.length);
                    if (Cholesky.factorLower(work, 0, nn, nn) != Cholesky.OK) throw new IllegalStateException("Cholesky failed");
                });
            } else {
                double[] work = new double[nn * nn];
                s = timing.measure(() -> {
                    System.arraycopy(h, 0, work, 0, h.length);
                    if (Cholesky.factorLower(work, 0, nn, nn) != Cholesky.OK) throw new IllegalStateException("Cholesky failed");
                });
            }
            Map<String, Object> sizes = new LinkedHashMap<>();
            sizes.put("n", nn);
            sizes.put("precision", float32 ? "float32" : "float64");
            timing.report("chol", sizes, s, "gflops", (double) nn * nn * nn / 3 / s / 1e9);
        }
    }
}
