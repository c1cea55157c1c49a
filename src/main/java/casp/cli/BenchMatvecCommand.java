package casp.cli;

import casp.kernel.QuantizedMatrix;
import casp.kernel.RandomizedSvd;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * `casp bench matvec`: the dequantizing product y = W x (or Y = X W^T with --tokens > 1) with a
 * random 2/3/4/8-bit matrix. gbytes_per_s counts the packed code bytes streamed per second
 * (scales and zeros excluded; gbytes_per_s_with_scales includes them).
 */
@Command(name = "matvec", mixinStandardHelpOptions = true,
        description = "Time the dequantizing mat-vec (or mat-mat) with a random quantized matrix.")
public final class BenchMatvecCommand implements Callable<Integer> {

    @Option(names = "--bits", defaultValue = "2", description = "Code width: 2, 3, 4 or 8 (default ${DEFAULT-VALUE}).")
    int bits;

    @Option(names = "--rows", defaultValue = "16384", description = "Output rows of W (default ${DEFAULT-VALUE}).")
    int rows;

    @Option(names = "--cols", defaultValue = "16384", description = "Input columns of W (default ${DEFAULT-VALUE}).")
    int cols;

    @Option(names = "--group-size", defaultValue = "128", description = "Inputs per scale/zero group, multiple of 16; 0 = whole row (default ${DEFAULT-VALUE}).")
    int groupSize;

    @Option(names = "--tokens", defaultValue = "1", description = "Input vectors; > 1 times Y = X W^T (default ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--runs", defaultValue = "20", description = "Timed runs; the median is reported (default ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", defaultValue = "5", description = "Untimed warm-up runs, continued until at least 2 s have passed when > 0 (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) throw new casp.io.BadInputException("--bits must be 2, 3, 4 or 8, got " + bits);
        BenchTiming.atLeast("--rows", rows, 1);
        BenchTiming.atLeast("--cols", cols, 1);
        BenchTiming.atLeast("--group-size", groupSize, 0);
        if (groupSize > 0 && groupSize < cols && groupSize % 16 != 0) {
            throw new casp.io.BadInputException("--group-size must be a multiple of 16 (or 0 for whole rows), got " + groupSize);
        }
        BenchTiming.atLeast("--tokens", tokens, 1);
        BenchTiming.atLeast("--runs", runs, 1);
        BenchTiming.atLeast("--warmup", warmup, 0);
        if ((long) tokens * Math.max(rows, cols) > Integer.MAX_VALUE - 8) throw new casp.io.BadInputException("--tokens too large for these sizes");

        QuantizedMatrix w = QuantizedMatrix.random(rows, cols, bits, groupSize, 1);
        float[] x = RandomizedSvd.gaussianMatrix(tokens, cols, 2);
        float[] y = new float[tokens * rows];
        BenchTiming.Stats st = BenchTiming.measure(warmup, runs, () -> {
            if (tokens == 1) w.matvec(x, 0, y, 0);
            else w.matmul(x, 0, tokens, y, 0);
        });
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("op", tokens == 1 ? "matvec" : "matmul");
        out.put("bits", bits);
        out.put("rows", rows);
        out.put("cols", cols);
        out.put("group_size", w.groupSize());
        out.put("tokens", tokens);
        if (tokens == 1) out.put("kernel", w.matvecKernel());
        out.put("runs", runs);
        out.put("seconds", st.median);
        out.put("best_seconds", st.best);
        out.put("gbytes_per_s", w.packedBytes() / st.median / 1e9);
        out.put("gbytes_per_s_with_scales", (w.packedBytes() + w.scaleBytes()) / st.median / 1e9);
        out.put("gflops", 2.0 * rows * cols * tokens / st.median / 1e9);
        BenchTiming.print(System.out, json, out);
        return 0;
    }
}
