package casp.cli;

import casp.io.ModelConfig;
import casp.io.ModelFolder;
import casp.io.TensorInfo;
import casp.io.WeightStore;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** `casp inspect MODEL_DIR`: architecture, sizes, parameter counts per component, dtypes. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show a model folder's architecture, parameter counts per component, dtypes and "
                + "the size it would have at 16, 4, 3 and 2 bits per weight.")
public final class InspectCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL_DIR", description = "Hugging Face model folder")
    Path modelDir;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    static final int[] SIZE_BITS = {16, 4, 3, 2};

    @Override
    public Integer call() throws Exception {
        ModelFolder m = ModelFolder.open(modelDir);
        ModelConfig c = m.config();
        WeightStore w = m.weights();
        // Components by tensor name; the decoder's linear weights are what compression shrinks.
        long vision = 0, projector = 0, embeddings = 0, decoderLinear = 0, decoderOther = 0, other = 0;
        Map<String, Long> dtypes = new TreeMap<>();
        for (String name : w.names()) {
            TensorInfo t = w.info(name);
            long n = t.numel();
            dtypes.merge(t.dtype().safetensorsName(), n, Long::sum);
            if (m.visionPrefix() != null && name.startsWith(m.visionPrefix())) vision += n;
            else if (m.projectorPrefix() != null && name.startsWith(m.projectorPrefix())) projector += n;
            else if (name.equals(m.textPrefix() + "embed_tokens.weight") || name.equals(m.lmHead())) embeddings += n;
            else if (name.startsWith(m.textPrefix() + "layers.") && name.endsWith("_proj.weight") && t.shape().length == 2) decoderLinear += n;
            else if (name.startsWith(m.textPrefix())) decoderOther += n;
            else other += n;
        }
        long languageModel = embeddings + decoderLinear + decoderOther;
        long total = vision + projector + languageModel + other;
        ModelConfig.TextConfig t = c.text();

        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("model", modelDir.toString());
        o.put("architecture", c.raw().path("architectures").path(0).asText(c.modelType()));
        o.put("model_type", c.modelType());
        ObjectNode lm = o.putObject("language_model");
        lm.put("model_type", t.modelType());
        lm.put("layers", t.numLayers());
        lm.put("hidden_size", t.hiddenSize());
        lm.put("intermediate_size", t.intermediateSize());
        lm.put("heads", t.numHeads());
        lm.put("kv_heads", t.numKvHeads());
        lm.put("head_dim", t.headDim());
        lm.put("vocab_size", t.vocabSize());
        lm.put("tied_embeddings", m.headTied());
        if (c.vision() != null) {
            ModelConfig.VisionConfig v = c.vision();
            ObjectNode vn = o.putObject("vision_tower");
            vn.put("layers", v.numLayers());
            vn.put("hidden_size", v.hiddenSize());
            vn.put("heads", v.numHeads());
            vn.put("image_size", v.imageSize());
            vn.put("patch_size", v.patchSize());
            vn.put("image_tokens", c.llava().featureSelectStrategy().equals("full") ? v.numPatches() + 1 : v.numPatches());
            if (c.isLlavaNext()) { // anyres: image_tokens is per tile; an image's count depends on its size
                casp.io.LlavaNextSettings ns = casp.io.LlavaNextSettings.of(c);
                var pins = vn.putArray("anyres_grid_pinpoints");
                for (int[] p : ns.gridPinpoints()) pins.addArray().add(p[0]).add(p[1]);
                int side = v.imageSize() / v.patchSize() / ns.spatialPoolStride();
                if (ns.video()) vn.put("video_tokens_per_frame", side * side);
            }
        }
        o.put("parameters", total);
        ObjectNode comp = o.putObject("parameters_by_component");
        comp.put("vision_tower", vision);
        comp.put("projector", projector);
        comp.put("language_model", languageModel);
        comp.put("embeddings", embeddings);
        comp.put("decoder_linear", decoderLinear);
        comp.put("decoder_other", decoderOther);
        if (other > 0) comp.put("other", other);
        ObjectNode dt = o.putObject("dtypes");
        dtypes.forEach(dt::put);
        // Only the decoder's linear weights are compressed; everything else stays at 16 bits.
        ObjectNode sizes = o.putObject("size_bytes_at_bits");
        for (int b : SIZE_BITS) sizes.put(Integer.toString(b), (decoderLinear * b + (total - decoderLinear) * 16L) / 8);

        if (json) {
            System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(o));
            return 0;
        }
        System.out.printf("%s  (%s)%n", modelDir, o.get("architecture").asText());
        System.out.printf("language model: %s, %d layers, hidden %d, intermediate %d, %d heads / %d kv heads, head_dim %d, vocab %d%s%n",
                t.modelType(), t.numLayers(), t.hiddenSize(), t.intermediateSize(), t.numHeads(), t.numKvHeads(),
                t.headDim(), t.vocabSize(), m.headTied() ? ", tied head" : "");
        if (c.vision() != null) {
            ModelConfig.VisionConfig v = c.vision();
            System.out.printf("vision tower:   CLIP, %d layers, hidden %d, %d heads, image %d, patch %d (%d image tokens%s)%n",
                    v.numLayers(), v.hiddenSize(), v.numHeads(), v.imageSize(), v.patchSize(), o.path("vision_tower").path("image_tokens").asInt(),
                    !c.isLlavaNext() ? "" : " per tile; anyres over " + o.path("vision_tower").path("anyres_grid_pinpoints").size()
                            + " grid resolutions" + (o.path("vision_tower").has("video_tokens_per_frame")
                            ? "; " + o.path("vision_tower").path("video_tokens_per_frame").asInt() + " tokens per video frame" : ""));
        }
        System.out.printf("parameters:     %,d total%n", total);
        if (c.vision() != null) {
            System.out.printf("  vision tower   %,15d%n", vision);
            System.out.printf("  projector      %,15d%n", projector);
        }
        System.out.printf("  language model %,15d  (embeddings %,d; decoder linear %,d; norms %,d)%n",
                languageModel, embeddings, decoderLinear, decoderOther);
        System.out.printf("dtypes:         %s%n", dtypes);
        System.out.print("size:          ");
        for (int b : SIZE_BITS) System.out.printf(" %d-bit %s ", b, humanBytes(sizes.get(Integer.toString(b)).asLong()));
        System.out.println("\n                (decoder linear weights at that width, everything else at 16 bits; scales/zeros not counted)");
        return 0;
    }

    static String humanBytes(long b) {
        if (b < 1024) return b + " B";
        String[] u = {"KiB", "MiB", "GiB", "TiB"};
        double v = b;
        int i = -1;
        while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
        return String.format("%.2f %s", v, u[i]);
    }
}
