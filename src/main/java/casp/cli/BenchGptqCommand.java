package casp.cli;

import casp.quant.gptq.Gptq;
import casp.quant.ProxyError;
import casp.quant.gptq.QuantizedWeight;
import casp.io.BadInputException;
import casp.kernel.Parallel;
import casp.kernel.Syrk;
import casp.kernel.VectorSupport;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Random;
import java.util.concurrent.Callable;

/**
 * `casp bench gptq`: GPTQ on one random layer, timed on the same work as ../shared/bench/numpy_ref.py's
 * gptq case (same sizes, same kind of H; damping, Cholesky, inverse, column loop with lazy blocks of
 * 128), so the two can be quoted side by side from one shell command. Building H is not timed.
 */
@Command(name = "gptq", mixinStandardHelpOptions = true,
        description = "Time GPTQ on one random layer (random weights, random full-rank H): median of --runs "
                + "after --warmup. Compare with: python3 ../shared/bench/numpy_ref.py gptq ROWS COLS BITS GROUP "
                + "(which reports the best of 2 after 1 warm-up).")
public final class BenchGptqCommand implements Callable<Integer> {
    @Option(names = "--rows", description = "output features (default ${DEFAULT-VALUE})")
    int rows = 4096;

    @Option(names = "--cols", description = "input features (default ${DEFAULT-VALUE})")
    int cols = 4096;

    @Option(names = "--bits", description = "2, 3, 4 or 8 (default ${DEFAULT-VALUE})")
    int bits = 2;

    @Option(names = "--group-size", description = "columns per group, -1 for per channel (default ${DEFAULT-VALUE})")
    int groupSize = 128;

    @Option(names = "--tokens", description = "calibration tokens behind H (default 4 x cols, as numpy_ref.py)")
    Integer tokens;

    @Option(names = "--act-order", description = "act-order with static groups (numpy_ref.py does not)")
    boolean actOrder;

    @Option(names = "--proxy", description = "also compute the relative proxy error tr(dW H dW^T)/tr(W H W^T)")
    boolean proxy;

    @Option(names = "--seed", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Mixin
    BenchTiming.Options timing;

    @Override
    public Integer call() {
        if (rows < 1) throw new BadInputException("--rows must be >= 1, got " + rows);
        if (cols < 1) throw new BadInputException("--cols must be >= 1, got " + cols);
        int n = tokens == null ? 4 * cols : tokens;
        if (n < 1) throw new BadInputException("--tokens must be >= 1, got " + n);
        Gptq.Options o;
        try {
            // numpy_ref.py: natural column order, groups from the current weights, asymmetric, 1% damping
            o = new Gptq.Options(bits, groupSize, actOrder, actOrder, false, 0.01, false, 128);
        } catch (IllegalArgumentException e) {
            throw new BadInputException("--bits / --group-size: " + e.getMessage());
        }

        long t0 = System.nanoTime();
        System.err.printf("casp: bench gptq: building W [%d, %d] and H from %d random tokens ...%n", rows, cols, n);
        Random rnd = new Random(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * 0.02);
        double[] h = randomHessian(cols, n, rnd);
        double setup = (System.nanoTime() - t0) / 1e9;

        Gptq gptq = new Gptq(o);
        QuantizedWeight[] last = new QuantizedWeight[1];
        System.err.printf("casp: bench gptq: %d warm-up + %d timed run(s) ...%n", timing.warmup, timing.runs);
        double seconds = timing.measure(() -> last[0] = gptq.quantize(w, rows, cols, h));
        double proxyError = proxy ? ProxyError.relative(w, last[0].dequantize(), rows, cols, h) : Double.NaN;

        ObjectNode out = new ObjectMapper().createObjectNode();
        out.put("op", "gptq");
        out.put("rows", rows);
        out.put("cols", cols);
        out.put("bits", bits);
        out.put("group_size", groupSize);
        out.put("act_order", actOrder);
        out.put("tokens", n);
        out.put("seconds", seconds);
        out.put("factor_seconds", last[0].stats().get("factor_seconds").doubleValue()); // of the last run
        out.put("loop_seconds", last[0].stats().get("loop_seconds").doubleValue());
        out.put("percdamp", last[0].stats().get("percdamp").doubleValue());
        out.put("effective_bits", last[0].effectiveBits());
        if (proxy) out.put("proxy_error", proxyError);
        out.put("setup_seconds", setup);
        out.put("threads", Parallel.threads());
        out.put("vector_bits", VectorSupport.bits());
        if (timing.json) {
            System.out.println(out);
        } else {
            System.out.printf("gptq %dx%d, %d-bit, group %d%s, H from %d tokens [%s, %d threads]%n",
                    rows, cols, bits, groupSize, actOrder ? ", act-order" : "", n, VectorSupport.describe(), Parallel.threads());
            System.out.printf("  %.3f s (median of %d after %d warm-up); last run: factorization %.3f s, column loop %.3f s%n",
                    seconds, timing.runs, timing.warmup, out.get("factor_seconds").asDouble(), out.get("loop_seconds").asDouble());
            System.out.printf("  damping %.4g, %.4f bits per weight%s; setup %.1f s%n",
                    out.get("percdamp").asDouble(), last[0].effectiveBits(),
                    proxy ? String.format(", proxy error %.4g", proxyError) : "", setup);
        }
        return 0;
    }

    /**
     * H = (2/N) X^T X with X [N, cols] ~ N(0, 1) scaled per column by 1 + U(0, 1), as numpy_ref.py
     * builds it, accumulated in float64 over chunks of tokens with {@link Syrk#accumulate}.
     */
    static double[] randomHessian(int cols, int tokens, Random rnd) {
        float[] colScale = new float[cols];
        for (int c = 0; c < cols; c++) colScale[c] = 1 + rnd.nextFloat();
        int chunk = Math.max(1, Math.min(tokens, (1 << 24) / cols)); // at most 64 MiB of X at a time
        float[] x = new float[chunk * cols];
        double[] h = new double[cols * cols];
        for (int t0 = 0; t0 < tokens; t0 += chunk) {
            int m = Math.min(chunk, tokens - t0);
            for (int t = 0; t < m; t++) {
                for (int c = 0; c < cols; c++) x[t * cols + c] = (float) rnd.nextGaussian() * colScale[c];
            }
            Syrk.accumulate(x, 0, cols, m, cols, h, 0, cols);
        }
        for (int i = 0; i < h.length; i++) h[i] *= 2.0 / tokens;
        return h;
    }
}
