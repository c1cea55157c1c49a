package casp.cli;

import casp.compress.CompressionOptions;
import casp.compress.CompressionReport;
import casp.compress.CompressionRun;
import casp.compress.SequentialCompressor;
import casp.io.BadInputException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp compress`: sequential RTN / GPTQ quantization of a model's decoder linears, written as a
 * GPTQ-format folder with casp-report.json (see casp.compress.CompressionRun).
 */
@Command(name = "compress", mixinStandardHelpOptions = true,
        description = "Quantize the decoder's linear layers (RTN or GPTQ) block by block on calibration data and "
                + "write a compressed model folder (GPTQ v1 tensors, quantization_config, casp-report.json).")
public final class CompressCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder")
    Path model;

    @Option(names = "--calib", required = true, paramLabel = "FILE",
            description = "calibration data: a UTF-8 text file (random windows of --seq-len tokens)")
    Path calib;

    @Option(names = "--images", paramLabel = "DIR", description = "images of a LLaVA calibration set (not implemented yet)")
    Path images;

    @Option(names = "--method", required = true, paramLabel = "rtn|gptq", description = "quantizer")
    String method;

    @Option(names = "--bits", required = true, paramLabel = "B", description = "bits per weight: 2, 3, 4 or 8")
    int bits;

    @Option(names = "--group-size", paramLabel = "G",
            description = "inputs per scale/zero group; -1 for one per output channel (default: 128, or the largest "
                    + "divisor of the input width below 128 when 128 does not divide it)")
    Integer groupSize;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "128", description = "calibration samples (default ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--seq-len", paramLabel = "L",
            description = "tokens per calibration sample (default: min(2048, the model's max positions))")
    Integer seqLen;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "seed of the calibration windows (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--act-order", description = "GPTQ: quantize columns by descending Hessian diagonal (static groups)")
    boolean actOrder;

    @Option(names = "--sym", description = "symmetric grid (default asymmetric)")
    boolean sym;

    @Option(names = "--true-sequential", arity = "1", paramLabel = "true|false", defaultValue = "true",
            description = "collect each input group's statistics after the earlier groups of the block are quantized "
                    + "(default ${DEFAULT-VALUE})")
    boolean trueSequential;

    @Option(names = "--damp", paramLabel = "F", defaultValue = "0.01", description = "GPTQ damping, fraction of mean diag(H) (default ${DEFAULT-VALUE})")
    double damp;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output folder (must not exist unless --force)")
    Path out;

    @Option(names = "--force", description = "replace an existing --out (and discard a checkpoint of an interrupted run)")
    boolean force;

    @Option(names = "--resume", description = "continue an interrupted run from its checkpoint OUT.partial")
    boolean resume;

    @Option(names = "--checkpoint", arity = "1", paramLabel = "true|false", defaultValue = "true",
            description = "save a checkpoint in OUT.partial after each block, for --resume (default ${DEFAULT-VALUE})")
    boolean checkpoint;

    @Option(names = "--json", description = "print one JSON object: effective_bits, seconds, out, ...")
    boolean json;

    @Override
    public Integer call() throws Exception {
        int maxPos = maxPositions();
        int len = seqLen != null ? seqLen : Math.min(2048, maxPos);
        if (len > maxPos) throw new BadInputException("--seq-len " + len + " exceeds the model's max_position_embeddings " + maxPos);
        if (groupSize != null && groupSize == 0) throw new BadInputException("--group-size must be positive or -1 (per channel), got 0");
        CompressionOptions opt = new CompressionOptions(method, bits, groupSize == null ? CompressionOptions.AUTO_GROUP : groupSize,
                actOrder, sym, trueSequential, samples, len, seed, damp);
        CompressionRun.Outcome o;
        Progress[] bar = new Progress[1];
        try {
            o = CompressionRun.run(new CompressionRun.Request(model, calib, images, opt, out, force, resume, checkpoint),
                    new SequentialCompressor.Listener() {
                        @Override
                        public void blockStarted(int layer, int layers) {
                            if (bar[0] == null) {
                                bar[0] = new Progress("compress", layers, "blocks");
                                bar[0].set(layer);
                            }
                        }

                        @Override
                        public void blockDone(SequentialCompressor.BlockResult b, casp.compress.Calibration a) {
                            bar[0].advance(1);
                        }
                    }, System.err);
        } finally {
            if (bar[0] != null) bar[0].close();
        }
        if (json) {
            ObjectMapper m = new ObjectMapper();
            ObjectNode j = m.createObjectNode();
            j.put("out", o.out().toString());
            j.put("effective_bits", o.effectiveBits());
            j.put("seconds", o.seconds());
            j.put("method", method);
            j.put("bits", bits);
            j.put("linear_weights", CompressionReport.weights(o.blocks()));
            j.put("model_bytes", o.outputBytes());
            j.put("activation_bytes", o.activationBytes());
            j.put("peak_heap_bytes", o.peakHeapBytes());
            j.put("peak_rss_bytes", o.peakRssBytes());
            if (o.resumedFromBlock() > 0) j.put("resumed_from_block", o.resumedFromBlock());
            System.out.println(m.writeValueAsString(j));
        } else {
            System.out.print(CompressionReport.table(o.blocks(), o.seconds(), o.peakHeapBytes(), o.peakRssBytes(), o.activationBytes()));
            System.out.printf(Locale.ROOT, "wrote %s (%s of weights; report in casp-report.json)%n", o.out(),
                    String.format(Locale.ROOT, "%.1f MiB", o.outputBytes() / 1048576.0));
        }
        return 0;
    }

    private int maxPositions() {
        return casp.io.ModelConfig.load(model).text().maxPositions();
    }
}
