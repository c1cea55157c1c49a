package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.quant.quip.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a compression run did, for casp-report.json and the summary table: per linear its bits,
 * effective bits, proxy error tr(dW H dW^T)/tr(W H W^T) and seconds; per block its time; totals
 * (effective bits per original linear weight, scales and zeros included; wall time; peak memory;
 * activation memory).
 */
public final class CompressionReport {
    private static final ObjectMapper JSON = new ObjectMapper();

    private CompressionReport() {}

    /** Weighted mean of effective bits over all linear weights. */
    public static double effectiveBits(List<BlockResult> blocks) {
        double bits = 0;
        long n = 0;
        for (BlockResult b : blocks) {
            for (LinearResult r : b.linears()) {
                bits += r.effectiveBits() * r.weights();
                n += r.weights();
            }
        }
        return n == 0 ? Double.NaN : bits / n;
    }

    /** Number of linear weights compressed. */
    public static long weights(List<BlockResult> blocks) {
        long n = 0;
        for (BlockResult b : blocks) for (LinearResult r : b.linears()) n += r.weights();
        return n;
    }

    /** One linear as JSON (without its tensors). */
    public static ObjectNode linearJson(LinearResult r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("layer", r.layer());
        o.put("linear", r.name());
        o.put("rows", r.rows());
        o.put("cols", r.cols());
        o.put("method", r.method());
        o.put("bits", r.bits());
        o.put("group_size", r.groupSize());
        o.put("effective_bits", r.effectiveBits());
        o.put("proxy_error", r.proxyError());
        o.put("seconds", r.seconds());
        ObjectNode s = o.putObject("stats");
        r.stats().forEach((k, v) -> {
            if (v instanceof Integer || v instanceof Long) s.put(k, v.longValue());
            else s.put(k, v.doubleValue());
        });
        return o;
    }

    /** Inverse of {@link #linearJson} (no stored layer): for checkpoints. */
    public static LinearResult linearFromJson(JsonNode o) {
        Map<String, Number> stats = new LinkedHashMap<>();
        o.path("stats").fields().forEachRemaining(e -> stats.put(e.getKey(),
                e.getValue().isIntegralNumber() ? (Number) e.getValue().asLong() : (Number) e.getValue().asDouble()));
        return new LinearResult(o.get("layer").asInt(), o.get("linear").asText(), o.get("rows").asInt(), o.get("cols").asInt(),
                o.get("method").asText(), o.get("bits").asInt(), o.get("group_size").asInt(), o.get("effective_bits").asDouble(),
                o.get("proxy_error").asDouble(), o.get("seconds").asDouble(), stats, null);
    }

    /** One block as JSON: its linears and times. */
    public static ObjectNode blockJson(BlockResult b) {
        ObjectNode o = JSON.createObjectNode();
        o.put("layer", b.layer());
        o.put("seconds", b.seconds());
        o.put("forward_seconds", b.forwardSeconds());
        o.put("hessian_seconds", b.hessianSeconds());
        ArrayNode a = o.putArray("linears");
        for (LinearResult r : b.linears()) a.add(linearJson(r));
        return o;
    }

    /** Inverse of {@link #blockJson} (no stored layer). */
    public static BlockResult blockFromJson(JsonNode o) {
        List<LinearResult> lin = new ArrayList<>();
        for (JsonNode n : o.path("linears")) lin.add(linearFromJson(n));
        return new BlockResult(o.get("layer").asInt(), lin, o.get("seconds").asDouble(), o.get("forward_seconds").asDouble(),
                o.path("hessian_seconds").asDouble(0));
    }

    /**
     * The report. totals: linear_weights, effective_bits, wall_seconds, peak_heap_bytes (sampled),
     * peak_rss_bytes (-1 if unknown), activation_bytes, output_bytes.
     */
    public static ObjectNode build(String model, ObjectNode calibration, ObjectNode options, List<BlockResult> blocks,
                                   double wallSeconds, long peakHeapBytes, long peakRssBytes, long activationBytes,
                                   int resumedFromBlock) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format_version", 1);
        root.put("model", model);
        root.set("calibration", calibration);
        root.set("options", options);
        ArrayNode layers = root.putArray("blocks");
        for (BlockResult b : blocks) layers.add(blockJson(b));
        ObjectNode t = root.putObject("totals");
        t.put("linear_weights", weights(blocks));
        t.put("effective_bits", effectiveBits(blocks));
        t.put("wall_seconds", wallSeconds);
        t.put("peak_heap_bytes", peakHeapBytes);
        t.put("peak_rss_bytes", peakRssBytes);
        t.put("activation_bytes", activationBytes);
        if (resumedFromBlock > 0) t.put("resumed_from_block", resumedFromBlock);
        return root;
    }

    /** The group column: the group size, "row" for one scale per row, "-" for QuIP# (one scale per linear). */
    private static String groupLabel(LinearResult r) {
        if (r.groupSize() > 0) return String.valueOf(r.groupSize());
        return r.method().equals(QuipLinear.METHOD) ? "-" : "row";
    }

    /** The summary table: one line per linear, a line per block, then totals. */
    public static String table(List<BlockResult> blocks, double wallSeconds, long peakHeapBytes, long peakRssBytes,
                               long activationBytes) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-5s %-18s %11s %4s %6s %9s %12s %8s%n", "layer", "linear", "shape", "bits",
                "group", "eff.bits", "proxy err", "seconds"));
        for (BlockResult b : blocks) {
            for (LinearResult r : b.linears()) {
                sb.append(String.format(Locale.ROOT, "%-5d %-18s %11s %4d %6s %9.3f %12.4e %8.2f%n", r.layer(), r.name(),
                        r.rows() + "x" + r.cols(), r.bits(), groupLabel(r),
                        r.effectiveBits(), r.proxyError(), r.seconds()));
            }
            sb.append(String.format(Locale.ROOT, "%-5d %-18s %11s %4s %6s %9s %12s %8.2f  (block; %.2f s running it)%n",
                    b.layer(), "block total", "", "", "", "", "", b.seconds(), b.forwardSeconds()));
        }
        sb.append(String.format(Locale.ROOT, "%d linear weights at %.4f effective bits (scales, zeros and codebooks included); "
                        + "wall time %.1f s; peak heap %s, peak RSS %s; calibration activations %s%n",
                weights(blocks), effectiveBits(blocks), wallSeconds, bytes(peakHeapBytes), bytes(peakRssBytes),
                bytes(activationBytes)));
        return sb.toString();
    }

    static String bytes(long b) {
        if (b < 0) return "n/a";
        if (b >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20));
        return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
    }
}
