package casp.cli;

import casp.compress.Exporter;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** `casp export CASP_DIR --format gptq|aqlm --out DIR`: a standard folder other tools run. */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Turn a casp folder into a standard GPTQ or AQLM folder that transformers, vLLM, GPTQModel or the aqlm "
                + "package load: CASP's low-rank q/k become one 16-bit (or --qk-bits round-to-nearest GPTQ) linear each, "
                + "mixed widths go into GPTQModel's dynamic, the model type is the original one. Reports the size this costs.")
public final class ExportCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "CASP_DIR", description = "folder written by casp compress")
    Path model;

    @Option(names = "--format", required = true, paramLabel = "gptq|aqlm", description = "target format")
    String format;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "output folder (written under a temporary name, then renamed)")
    Path out;

    @Option(names = "--qk-bits", defaultValue = "0", paramLabel = "B",
            description = "gptq: store the q/k products as B-bit (2, 3, 4, 8) round-to-nearest GPTQ linears with groups of 128 "
                    + "(loadable by AutoGPTQ too, with a quantization error of its own) instead of 16-bit weights (default 0: 16-bit)")
    int qkBits;

    @Option(names = "--force", description = "replace --out if it exists")
    boolean force;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @Override
    public Integer call() throws Exception {
        Exporter.Format f = switch (format.toLowerCase(Locale.ROOT)) {
            case "gptq" -> Exporter.Format.GPTQ;
            case "aqlm" -> Exporter.Format.AQLM;
            default -> throw new casp.io.BadInputException("--format " + format + ": give gptq or aqlm");
        };
        Exporter.Result r = Exporter.export(model, out, f, qkBits, force);
        if (json) {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("out", out.toString());
            o.put("format", f.name().toLowerCase(Locale.ROOT));
            o.put("low_rank_projections", r.lowRank());
            o.put("factor_bytes", r.factorBytes());
            o.put("replacement_bytes", r.replacedBytes());
            o.put("input_bytes", r.inputBytes());
            o.put("output_bytes", r.outputBytes());
            System.out.println(o);
        } else {
            System.out.printf("wrote %s (%s)%n", out, f.name().toLowerCase(Locale.ROOT));
            if (r.lowRank() > 0)
                System.out.printf("q/k: %d low-rank projections, factors %s -> %s as %s (%+.1f%%)%n", r.lowRank(), mib(r.factorBytes()),
                        mib(r.replacedBytes()), qkBits > 0 ? qkBits + "-bit GPTQ" : "16-bit weights",
                        100.0 * (r.replacedBytes() - r.factorBytes()) / Math.max(1, r.factorBytes()));
            System.out.printf("weights: %s -> %s (%+.1f%%)%n", mib(r.inputBytes()), mib(r.outputBytes()),
                    100.0 * (r.outputBytes() - r.inputBytes()) / Math.max(1, r.inputBytes()));
        }
        return 0;
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.2f MiB", bytes / 1048576.0);
    }
}
