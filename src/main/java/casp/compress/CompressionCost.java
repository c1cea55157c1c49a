package casp.compress;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * What a compression run costs, stage by stage, and what the whole model will cost: the one-off
 * stages (building the calibration inputs, of which the vision tower's pass; CASP's measurement of
 * the uncompressed model) and, per block, reading its weights, the calibration forward passes, the
 * Hessians, the low-rank step, each quantizer and the checkpoint, with the process CPU time (CPU
 * seconds over wall seconds is how many cores the block kept busy). The projection for all blocks
 * is the one-off stages plus the number of blocks times the mean block of this run: blocks have
 * the same shapes, so they cost the same.
 */
public final class CompressionCost {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Times of a block that the compressor does not see: reading its weights, saving the checkpoint, CPU seconds. */
    public record BlockExtra(double loadSeconds, double checkpointSeconds, double cpuSeconds) {}

    private final int layers;
    private double calibrationSeconds, visionSeconds, measureSeconds, measureForwardSeconds;
    private int images;
    private final Map<Integer, BlockExtra> extras = new TreeMap<>();

    public CompressionCost(int layers) {
        this.layers = layers;
    }

    /** Building the calibration inputs took seconds, of which visionSeconds in the vision tower over images distinct images. */
    public void calibration(double seconds, double visionSeconds, int images) {
        this.calibrationSeconds = seconds;
        this.visionSeconds = visionSeconds;
        this.images = images;
    }

    /** CASP's measurement of the uncompressed model took seconds (all layers), forwardSeconds of it running the layers. */
    public void measurement(double seconds, double forwardSeconds) {
        this.measureSeconds = seconds;
        this.measureForwardSeconds = forwardSeconds;
    }

    /** Records the extra times of a block compressed in this run. */
    public void block(int layer, BlockExtra extra) {
        extras.put(layer, extra);
    }

    /** Process CPU seconds so far (all threads), or NaN where the JVM does not say. */
    public static double processCpuSeconds() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            long ns = os.getProcessCpuTime();
            return ns < 0 ? Double.NaN : ns / 1e9;
        }
        return Double.NaN;
    }

    /** Seconds of a block by stage, in report order (the compressor's part; see {@link BlockExtra} for the rest). */
    public static Map<String, Double> stages(BlockResult b) {
        Map<String, Double> s = new LinkedHashMap<>();
        s.put("forward", b.forwardSeconds() - b.hessianSeconds());
        s.put("hessians", b.hessianSeconds());
        double lowRank = 0, linears = 0;
        Map<String, Double> quant = new TreeMap<>();
        for (LinearResult r : b.linears()) {
            linears += r.seconds();
            if (r.lowRank() != null) lowRank += r.seconds();
            else quant.merge(r.method(), r.seconds(), Double::sum);
        }
        s.put("low_rank", lowRank);
        quant.forEach((m, v) -> s.put("quantize_" + m, v));
        s.put("other", Math.max(0, b.seconds() - b.forwardSeconds() - linears));
        return s;
    }

    /** Wall seconds of a block including what the compressor does not see. */
    private double blockSeconds(BlockResult b) {
        BlockExtra e = extras.get(b.layer());
        return b.seconds() + (e == null ? 0 : e.loadSeconds() + e.checkpointSeconds());
    }

    /** Mean wall seconds per block over the blocks compressed in this run (all blocks given when none was). */
    public double meanBlockSeconds(List<BlockResult> blocks) {
        double sum = 0;
        int n = 0;
        for (BlockResult b : blocks) {
            if (!extras.isEmpty() && !extras.containsKey(b.layer())) continue;
            sum += blockSeconds(b);
            n++;
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    /** One-off seconds plus every block at the mean block time. */
    public double projectedTotalSeconds(List<BlockResult> blocks) {
        return calibrationSeconds + measureSeconds + layers * meanBlockSeconds(blocks);
    }

    /** The cost section of casp-report.json and --json. */
    public ObjectNode json(List<BlockResult> blocks, long peakRssBytes, long peakHeapBytes) {
        ObjectNode o = JSON.createObjectNode();
        o.put("layers", layers);
        o.put("blocks_done", blocks.size());
        o.put("blocks_this_run", extras.size());
        ObjectNode once = o.putObject("once");
        once.put("calibration_inputs_seconds", calibrationSeconds);
        once.put("vision_tower_seconds", visionSeconds);
        once.put("vision_tower_images", images);
        once.put("casp_measurement_seconds", measureSeconds);
        if (measureSeconds > 0) {
            once.put("casp_measurement_seconds_per_layer", measureSeconds / layers);
            once.put("casp_measurement_forward_seconds_per_layer", measureForwardSeconds / layers);
        }
        ArrayNode per = o.putArray("blocks");
        Map<String, Double> sums = new LinkedHashMap<>();
        int counted = 0;
        for (BlockResult b : blocks) {
            ObjectNode x = per.addObject();
            x.put("layer", b.layer());
            BlockExtra e = extras.get(b.layer());
            Map<String, Double> st = new LinkedHashMap<>();
            if (e != null) st.put("load_weights", e.loadSeconds());
            st.putAll(stages(b));
            if (e != null) st.put("checkpoint", e.checkpointSeconds());
            ObjectNode sx = x.putObject("seconds");
            st.forEach(sx::put);
            x.put("total_seconds", blockSeconds(b));
            if (e != null && !Double.isNaN(e.cpuSeconds())) {
                x.put("cpu_seconds", e.cpuSeconds());
                x.put("cores_busy", e.cpuSeconds() / blockSeconds(b));
            }
            if (extras.isEmpty() || e != null) {
                st.forEach((k, v) -> sums.merge(k, v, Double::sum));
                counted++;
            }
        }
        ObjectNode mean = o.putObject("mean_block_seconds");
        final int n = counted;
        sums.forEach((k, v) -> mean.put(k, v / n));
        mean.put("total", meanBlockSeconds(blocks));
        o.put("projected_total_seconds", projectedTotalSeconds(blocks));
        o.put("projected_total_hours", projectedTotalSeconds(blocks) / 3600);
        o.put("peak_rss_bytes", peakRssBytes);
        o.put("peak_heap_bytes", peakHeapBytes);
        return o;
    }

    /** One line for stderr after a block: its stages, the projected total and what is left. */
    public String progressLine(BlockResult b, List<BlockResult> done) {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "casp: block %d/%d %.1f s (", b.layer() + 1, layers, blockSeconds(b)));
        List<String> parts = new ArrayList<>();
        BlockExtra e = extras.get(b.layer());
        if (e != null) parts.add(String.format(Locale.ROOT, "load %.1f", e.loadSeconds()));
        stages(b).forEach((k, v) -> parts.add(String.format(Locale.ROOT, "%s %.1f", k.replace("quantize_", ""), v)));
        if (e != null && !Double.isNaN(e.cpuSeconds()))
            parts.add(String.format(Locale.ROOT, "%.2f cores busy", e.cpuSeconds() / blockSeconds(b)));
        sb.append(String.join(", ", parts)).append(")");
        double mean = meanBlockSeconds(done);
        sb.append(String.format(Locale.ROOT, "; all %d blocks: %s projected, %s left", layers,
                duration(projectedTotalSeconds(done)), duration((layers - b.layer() - 1) * mean)));
        return sb.toString();
    }

    /** h:mm:ss. */
    static String duration(double seconds) {
        if (Double.isNaN(seconds)) return "?";
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }
}
