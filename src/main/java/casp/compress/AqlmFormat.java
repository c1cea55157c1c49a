package casp.compress;

import casp.quant.aqlm.Aqlm;
import casp.compress.SequentialCompressor.LinearResult;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.aqlm.AqlmWeight;
import casp.io.ModelFolder;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The quantization_config of an AQLM folder (tensors: {@link AqlmTensors}), in Hugging Face's
 * "aqlm" form so AQLM-aware readers recognise it:
 * {@code quant_method "aqlm", nbits_per_codebook, num_codebooks, in_group_size 8, out_group_size 1,
 * linear_weights_not_to_quantize} (every ".weight" tensor left as it was, and the output head:
 * Hugging Face replaces every other nn.Linear by an AQLM layer), plus casp's own "casp" object
 * (version, method, backend, per-linear bits, calibration and quantizer settings).
 *
 * <p>CASP folders (--backend aqlm) differ: the linears have different widths, so different codebook
 * counts at one codebook size (num_codebooks at the top is that of most weights; each linear's width
 * is in casp.bits, and its count is width x 8 / nbits_per_codebook, which casp.quant.aqlm.AqlmLinear
 * reads), and q/k are low-rank factors (casp.low_rank: rank and format per projection; a factor is
 * AQLM codes or per-channel GPTQ tensors). Hugging Face's AQLM reader, which assumes one
 * configuration, cannot load such a folder; casp can.
 */
public final class AqlmFormat {
    private AqlmFormat() {}

    /** quantization_config for AQLM results (all linears share one codebook configuration). */
    public static ObjectNode quantizationConfig(ModelFolder source, CompressionOptions opt, List<LinearResult> results) {
        Aqlm.Options a = opt.aqlmOptions();
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("quant_method", "aqlm");
        q.put("nbits_per_codebook", a.codebookBits());
        q.put("num_codebooks", a.numCodebooks());
        q.put("in_group_size", AqlmTensors.IN_GROUP);
        q.put("out_group_size", 1);
        Set<String> replaced = new HashSet<>();
        java.util.Map<Integer, Long> byCount = new java.util.TreeMap<>();
        boolean casp = false;
        for (LinearResult r : results) {
            replaced.add(source.layer(r.layer(), r.name()) + ".weight");
            if (r.lowRank() != null) { // casp: q/k as factors
                casp = true;
                continue;
            }
            if (!(r.stored() instanceof AqlmWeight aw)) throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " is not an AQLM result");
            if (aw.codebookBits != a.codebookBits())
                throw new IllegalArgumentException("layer " + r.layer() + " " + r.name() + " has another codebook size");
            if (aw.numCodebooks != a.numCodebooks()) casp = true; // casp: widths allocated per linear
            byCount.merge(aw.numCodebooks, (long) r.rows() * r.cols(), Long::sum);
        }
        if (casp) q.put("num_codebooks", byCount.entrySet().stream().max(java.util.Map.Entry.comparingByValue())
                .map(java.util.Map.Entry::getKey).orElse(a.numCodebooks()));
        Set<String> keep = new TreeSet<>();
        for (String name : source.weights().names()) if (name.endsWith(".weight") && !replaced.contains(name)) keep.add(name);
        keep.add(source.headTied() ? (source.textPrefix().equals("language_model.model.") ? "language_model.lm_head.weight" : "lm_head.weight")
                : source.lmHead());
        ArrayNode k = q.putArray("linear_weights_not_to_quantize");
        keep.forEach(k::add);

        ObjectNode c = q.putObject("casp");
        c.put("version", CompressedModelWriter.FORMAT_VERSION);
        c.put("method", "aqlm");
        c.put("backend", "aqlm");
        c.put("tensor_format", "aqlm");
        CompressedModelWriter.perLinear(c, source, results, false);
        ObjectNode s = c.putObject("aqlm");
        s.put("beam_width", a.beamWidth());
        s.put("iterations", a.iterations());
        s.put("kmeans_iterations", a.kmeansIterations());
        s.put("rel_tolerance", a.relTolerance());
        s.put("joint_limit", a.jointLimit());
        s.put("seed", a.seed());
        CompressedModelWriter.calibration(c, opt);
        return q;
    }
}
