package casp.compress;

import casp.io.BadInputException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * CASP's measurements of the uncompressed model kept in a checkpoint (measurements.json), so that
 * a resumed run plans exactly as the first part did without measuring the whole model again (on a
 * 7B model that is hours). Doubles are written in their shortest exact form and read back
 * bit for bit. Measurements holding q/k spectra (the threshold and budget rank rules) are not
 * kept: a resumed run measures those again.
 */
final class MeasurementsFile {
    static final String NAME = "measurements.json";
    /** The layers measured so far by an unfinished measurement (the same format, fewer layers). */
    static final String PARTIAL = "measurements-partial.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private MeasurementsFile() {}

    /** Whether m can be kept (it holds no q/k decompositions). */
    static boolean keepable(AllocationProbe.Measurements m) {
        return m != null && m.q() == null && m.k() == null;
    }

    /** Writes m into dir/name (temporary name, then renamed). */
    static void write(Path dir, AllocationProbe.Measurements m, String name) throws IOException {
        if (!keepable(m)) throw new IllegalArgumentException("measurements with q/k spectra are not kept");
        ObjectNode root = JSON.createObjectNode();
        ArrayNode w = root.putArray("widths");
        for (int x : m.widths()) w.add(x);
        ArrayNode bi = root.putArray("influence");
        for (double x : m.influence()) bi.add(x);
        root.set("distortion", perLayer(m.distortion()));
        root.set("proxy_error", perLayer(m.proxyError()));
        if (m.sparsity() != null) {
            ArrayNode sp = root.putArray("sparsity");
            for (double[] layer : m.sparsity()) {
                ArrayNode h = sp.addArray();
                for (double x : layer) h.add(x);
            }
        }
        root.put("seconds", m.seconds());
        root.put("forward_seconds", m.forwardSeconds());
        Path tmp = dir.resolve(name + ".tmp");
        Files.write(tmp, JSON.writeValueAsBytes(root));
        Files.move(tmp, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The measurements kept in dir/name, or null when there are none. */
    static AllocationProbe.Measurements read(Path dir, String name) {
        Path f = dir.resolve(name);
        if (!Files.isRegularFile(f)) return null;
        try {
            JsonNode root = JSON.readTree(f.toFile());
            int[] widths = new int[root.get("widths").size()];
            for (int i = 0; i < widths.length; i++) widths[i] = root.get("widths").get(i).asInt();
            double[] bi = new double[root.get("influence").size()];
            for (int i = 0; i < bi.length; i++) bi[i] = root.get("influence").get(i).asDouble();
            double[][] sparsity = null;
            if (root.has("sparsity")) {
                JsonNode sp = root.get("sparsity");
                sparsity = new double[sp.size()][];
                for (int l = 0; l < sparsity.length; l++) {
                    sparsity[l] = new double[sp.get(l).size()];
                    for (int h = 0; h < sparsity[l].length; h++) sparsity[l][h] = sp.get(l).get(h).asDouble();
                }
            }
            return new AllocationProbe.Measurements(widths, bi, perLayer(root.get("distortion")), perLayer(root.get("proxy_error")),
                    null, null, sparsity, root.get("seconds").asDouble(), root.get("forward_seconds").asDouble());
        } catch (IOException | RuntimeException e) {
            throw new BadInputException(f + ": cannot read the checkpoint's measurements: " + e.getMessage());
        }
    }

    private static ArrayNode perLayer(List<Map<String, double[]>> layers) {
        ArrayNode a = JSON.createArrayNode();
        for (Map<String, double[]> layer : layers) {
            ObjectNode o = a.addObject();
            layer.forEach((name, v) -> {
                ArrayNode x = o.putArray(name);
                for (double d : v) x.add(d);
            });
        }
        return a;
    }

    private static List<Map<String, double[]>> perLayer(JsonNode a) {
        List<Map<String, double[]>> out = new ArrayList<>();
        for (JsonNode o : a) {
            Map<String, double[]> layer = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = o.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                double[] v = new double[e.getValue().size()];
                for (int i = 0; i < v.length; i++) v[i] = e.getValue().get(i).asDouble();
                layer.put(e.getKey(), v);
            }
            out.add(layer);
        }
        return out;
    }
}
