package casp.cli;

import casp.io.BadInputException;
import casp.kernel.RandomizedSvd;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * `casp bench rsvd`: the randomized SVD of a Gaussian [m, n] matrix scaled by 1/sqrt(n), the same
 * problem and steps as `numpy_ref.py rsvd M N RANK Q` (16 oversampling columns, CholeskyQR2 after
 * every product, eigen-decomposition of the small Gram matrix).
 */
@Command(name = "rsvd", mixinStandardHelpOptions = true,
        description = {"Time the randomized SVD (ALGORITHMS.md section 3) of a random [m, n] matrix.",
                "gflops counts only the 2q+2 products with A: (2q+2) * 2 m n (rank+oversample)."})
public final class BenchRsvdCommand implements Callable<Integer> {

    @Option(names = "--m", defaultValue = "4096", description = "Rows of A (default ${DEFAULT-VALUE}).")
    int m;

    @Option(names = "--n", defaultValue = "4096", description = "Columns of A (default ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--rank", defaultValue = "512", description = "Rank r (default ${DEFAULT-VALUE}).")
    int rank;

    @Option(names = "--oversample", defaultValue = "16", description = "Extra sample columns p (default ${DEFAULT-VALUE}).")
    int oversample;

    @Option(names = "--power-iters", defaultValue = "2", description = "Power iterations q (default ${DEFAULT-VALUE}).")
    int powerIters;

    @Option(names = "--runs", defaultValue = "3", description = "Timed runs; the median is reported (default ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed warm-up runs, continued until at least 2 s have passed when > 0 (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of A and of the test matrices (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() {
        BenchTiming.atLeast("--m", m, 1);
        BenchTiming.atLeast("--n", n, 1);
        BenchTiming.atLeast("--rank", rank, 1);
        if (rank > Math.min(m, n)) throw new BadInputException("--rank must be <= min(--m, --n) = " + Math.min(m, n) + ", got " + rank);
        BenchTiming.atLeast("--oversample", oversample, 0);
        BenchTiming.atLeast("--power-iters", powerIters, 0);
        BenchTiming.atLeast("--runs", runs, 1);
        BenchTiming.atLeast("--warmup", warmup, 0);
        if ((long) m * n > Integer.MAX_VALUE - 8) throw new BadInputException("--m * --n must stay below 2^31 entries");

        float[] a = RandomizedSvd.gaussianMatrix(m, n, seed);
        float scale = (float) (1 / Math.sqrt(n));
        for (int i = 0; i < a.length; i++) a[i] *= scale;
        long[] call = {0};
        BenchTiming.Stats st = BenchTiming.measure(warmup, runs,
                () -> RandomizedSvd.compute(a, m, n, rank, oversample, powerIters, seed + 1 + call[0]++));
        int l = Math.min(rank + oversample, Math.min(m, n));
        double flops = (2.0 * powerIters + 2) * 2.0 * m * n * l;
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("op", "rsvd");
        out.put("m", m);
        out.put("n", n);
        out.put("rank", rank);
        out.put("power_iters", powerIters);
        out.put("oversample", oversample);
        out.put("runs", runs);
        out.put("seconds", st.median);
        out.put("best_seconds", st.best);
        out.put("gflops", flops / st.median / 1e9);
        BenchTiming.print(System.out, json, out);
        return 0;
    }
}
