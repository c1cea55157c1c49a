package casp.cli;

import casp.io.BadInputException;
import casp.synth.TwinConfigs;
import casp.synth.TwinWriter;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** `casp synth`: a random-weight shape twin of a published checkpoint or of a config.json. */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a Hugging Face model folder with random weights (normal, std = initializer_range; "
                + "norms 1, biases 0) in the exact tensor names, shapes and dtypes of a real checkpoint, sharded "
                + "like save_pretrained, with a tokenizer of the config's vocabulary size: what a model costs to "
                + "load, compress and run on this machine, before downloading it.")
public final class SynthCommand implements Callable<Integer> {
    static final class Source {
        @Option(names = "--like", paramLabel = "NAME", required = true,
                description = "a built-in config: llama-2-7b, llava-1.5-7b, llava-1.5-13b, llava-v1.6-vicuna-7b, llava-next-video-7b")
        String like;

        @Option(names = "--config", paramLabel = "FILE", required = true, description = "a config.json")
        Path config;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "folder to create (must not exist)")
    Path out;

    @Option(names = "--layers", paramLabel = "N", description = "keep the first N decoder layers (full width)")
    Integer layers;

    @Option(names = "--dtype", paramLabel = "bf16|f16|f32", description = "weight dtype (default: the config's torch_dtype)")
    String dtype;

    @Option(names = "--seed", defaultValue = "0", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--max-shard-size", paramLabel = "BYTES", defaultValue = "5GB",
            description = "largest shard, e.g. 5GB, 200MB or a byte count (default: ${DEFAULT-VALUE})")
    String maxShardSize;

    @Option(names = "--json", description = "print one JSON object at the end")
    boolean json;

    @Override
    public Integer call() throws IOException {
        ObjectNode config;
        String where;
        if (source.like != null) {
            config = TwinConfigs.get(source.like);
            where = "--like " + source.like;
        } else {
            where = source.config.toString();
            if (!Files.isRegularFile(source.config)) throw new BadInputException("--config " + source.config + ": no such file");
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(source.config.toFile());
            } catch (IOException e) {
                throw new BadInputException(source.config + ": not valid JSON: " + e.getMessage());
            }
            if (root == null || !root.isObject()) throw new BadInputException(source.config + ": not a JSON object");
            config = (ObjectNode) root;
        }
        TwinWriter writer = new TwinWriter(config, layers, parseDtype(dtype), seed, parseBytes(maxShardSize), where);
        long total = writer.totalBytes();
        long params = total / writer.dtype().bytes();
        System.err.printf(Locale.ROOT, "synth: %,d parameters, %d tensors, %.2f GB of %s -> %s%n",
                params, writer.tensors().size(), total / 1e9, writer.dtype(), out);
        long t0 = System.nanoTime();
        try (Progress p = new Progress("synth", total >> 20, "MiB")) {
            writer.write(out, bytes -> p.set(bytes >> 20));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (json) {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("out", out.toString());
            o.put("parameters", params);
            o.put("tensors", writer.tensors().size());
            o.put("bytes", total);
            o.put("dtype", writer.dtype().safetensorsName());
            o.put("seconds", secs);
            System.out.println(o);
        } else {
            System.out.printf(Locale.ROOT, "%s: %,d parameters in %.2f GB (%s), written in %.1f s%n",
                    out, params, total / 1e9, writer.dtype(), secs);
        }
        return 0;
    }

    private static DType parseDtype(String s) {
        if (s == null) return null;
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "bf16", "bfloat16" -> DType.BF16;
            case "f16", "fp16", "float16" -> DType.F16;
            case "f32", "fp32", "float32" -> DType.F32;
            default -> throw new BadInputException("--dtype: '" + s + "' is not bf16, f16 or f32");
        };
    }

    /** "5GB", "200MB", "64KB" (powers of 1000, as save_pretrained reads them) or a plain byte count. */
    static long parseBytes(String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        long unit = 1;
        for (String[] u : new String[][]{{"GB", "1000000000"}, {"MB", "1000000"}, {"KB", "1000"}, {"B", "1"}}) {
            if (t.endsWith(u[0])) {
                unit = Long.parseLong(u[1]);
                t = t.substring(0, t.length() - u[0].length()).trim();
                break;
            }
        }
        try {
            long v = Long.parseLong(t);
            if (v <= 0) throw new NumberFormatException();
            return Math.multiplyExact(v, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new BadInputException("--max-shard-size: '" + s + "' is not a positive size such as 5GB");
        }
    }
}
