package casp.cli;

import casp.io.BadInputException;
import casp.kernel.DenseSvd;
import casp.kernel.RandomizedSvd;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * `casp bench svd`: the thin SVD ({@link DenseSvd}, float64 inside) of a standard normal float32
 * [m, n] matrix, the problem `numpy_ref.py svd N` times with numpy.linalg.svd (LAPACK gesdd,
 * full_matrices=False). The timed call includes widening the float input to double.
 */
@Command(name = "svd", mixinStandardHelpOptions = true,
        description = {"Time the exact thin SVD (DenseSvd) of a random Gaussian [m, n] matrix.",
                "Compare with: python3 ../shared/bench/numpy_ref.py svd N (square only)."})
public final class BenchSvdCommand implements Callable<Integer> {

    @Option(names = "--n", defaultValue = "1000", description = "Columns of A (default ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--m", description = "Rows of A (default: n).")
    Integer m;

    @Option(names = "--runs", defaultValue = "5", description = "Timed runs; the median is reported (default ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "3", description = "Untimed warm-up runs: the JIT needs a few; continued until at least 2 s have passed when > 0 (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of A (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() {
        BenchTiming.atLeast("--n", n, 1);
        int rows = m == null ? n : BenchTiming.atLeast("--m", m, 1);
        BenchTiming.atLeast("--runs", runs, 1);
        BenchTiming.atLeast("--warmup", warmup, 0);
        // U [m, k], Vt [k, n] and the n x n work arrays must fit in Java arrays too.
        long big = Math.max((long) rows, n);
        if (big * big > Integer.MAX_VALUE - 8) throw new BadInputException("--m and --n must stay below 46340");

        float[] a = RandomizedSvd.gaussianMatrix(rows, n, seed);
        BenchTiming.Stats st = BenchTiming.measure(warmup, runs, () -> {
            double[] ad = new double[a.length];
            for (int i = 0; i < a.length; i++) ad[i] = a[i];
            DenseSvd.decompose(ad, rows, n);
        });
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("op", "svd");
        out.put("m", rows);
        out.put("n", n);
        out.put("runs", runs);
        out.put("seconds", st.median);
        out.put("best_seconds", st.best);
        BenchTiming.print(System.out, json, out);
        return 0;
    }
}
