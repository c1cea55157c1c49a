package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks the numbers of a config.json before anything is sized from them. Every size must be a
 * whole positive number; every float finite and in its range; and no matrix may need more
 * elements than the folder's weight files could hold at 2 bits each (so a config of a 7B model
 * beside a 1 MB file, or a head_dim of 2^31-1, is refused before an array is made). A value out of
 * range is a {@link BadInputException} naming the file and the field.
 */
final class ConfigChecks {
    private ConfigChecks() {}

    /** Fewest bits any stored weight takes (2-bit quantization); bounds the elements a file can back. */
    private static final long WEIGHTS_PER_BYTE = 4;

    static final String[] TEXT_INTS = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"};
    static final String[] VISION_INTS = {"hidden_size", "image_size", "patch_size", "num_channels", "num_hidden_layers",
            "num_attention_heads", "intermediate_size"};
    static final String[] LLAVA_INTS = {"image_token_index", "vision_feature_layer", "image_seq_length"};

    /** Checks the JSON types of the integer fields (root = the whole config). */
    static void checkIntegers(Path file, JsonNode root, boolean llava) {
        if (llava) {
            integers(file, root, "", LLAVA_INTS, Integer.MIN_VALUE);
            integers(file, root.path("text_config"), "text_config.", TEXT_INTS, 1);
            integers(file, root.path("vision_config"), "vision_config.", VISION_INTS, 1);
        } else {
            integers(file, root, "", TEXT_INTS, 1);
        }
    }

    /** Sizes are checked to be >= 1 here, before anything divides by them. */
    private static void integers(Path file, JsonNode n, String where, String[] keys, int least) {
        for (String k : keys) {
            JsonNode v = n.get(k);
            if (v == null || v.isNull()) continue;
            if (!v.isIntegralNumber() || !v.canConvertToInt())
                throw new BadInputException(file + ": \"" + where + k + "\" must be a whole number, got " + v);
            if (v.asInt() < least)
                throw new BadInputException(file + ": \"" + where + k + "\" must be >= " + least + ", got " + v);
        }
    }

    /** Checks the parsed values against each other and against the weight files in the folder. */
    static void checkValues(Path file, ModelConfig c) {
        long limit = weightCapacity(file.getParent());
        ModelConfig.TextConfig t = c.text();
        String p = c.isLlava() ? "text_config." : "";
        positive(file, p + "hidden_size", t.hiddenSize());
        positive(file, p + "intermediate_size", t.intermediateSize());
        positive(file, p + "num_hidden_layers", t.numLayers());
        positive(file, p + "num_attention_heads", t.numHeads());
        positive(file, p + "num_key_value_heads", t.numKvHeads());
        positive(file, p + "head_dim", t.headDim());
        positive(file, p + "vocab_size", t.vocabSize());
        positive(file, p + "max_position_embeddings", t.maxPositions());
        if (t.headDim() % 2 != 0)
            throw new BadInputException(file + ": \"" + p + "head_dim\" must be even (rotary embeddings rotate pairs), got " + t.headDim());
        if (!(t.rmsNormEps() > 0 && t.rmsNormEps() < 1))
            throw new BadInputException(file + ": \"" + p + "rms_norm_eps\" must be in (0, 1), got " + t.rmsNormEps());
        // below 1 the rotary frequencies theta^(-2i/d) exceed 1 and overflow float for tiny theta
        if (!(t.ropeTheta() >= 1) || Double.isInfinite(t.ropeTheta()))
            throw new BadInputException(file + ": \"" + p + "rope_theta\" must be a number of at least 1, got " + t.ropeTheta());
        ModelConfig.RopeScaling rs = t.ropeScaling();
        if (rs != null && (!(rs.factor() > 0) || Double.isInfinite(rs.factor()) || "llama3".equals(rs.type()) && (!(rs.lowFreqFactor() > 0)
                || !(rs.highFreqFactor() > rs.lowFreqFactor()) || Double.isInfinite(rs.highFreqFactor()) || rs.originalMaxPositions() < 1)))
            throw new BadInputException(file + ": \"" + p + "rope_scaling\" needs factor > 0 (llama3: also 0 < low_freq_factor < high_freq_factor "
                    + "and original_max_position_embeddings >= 1)");
        fits(file, limit, p + "vocab_size x hidden_size", t.vocabSize(), t.hiddenSize());
        fits(file, limit, p + "num_attention_heads x head_dim x hidden_size", t.numHeads(), t.headDim(), t.hiddenSize());
        fits(file, limit, p + "intermediate_size x hidden_size", t.intermediateSize(), t.hiddenSize());
        fits(file, limit, p + "num_hidden_layers x hidden_size", t.numLayers(), t.hiddenSize());
        if (t.qDim() <= 0 || (long) t.numHeads() * t.headDim() != t.qDim())
            throw new BadInputException(file + ": \"" + p + "num_attention_heads\" x \"head_dim\" is too large");
        if (!c.isLlava()) return;

        ModelConfig.VisionConfig v = c.vision();
        positive(file, "vision_config.hidden_size", v.hiddenSize());
        positive(file, "vision_config.image_size", v.imageSize());
        positive(file, "vision_config.patch_size", v.patchSize());
        positive(file, "vision_config.num_hidden_layers", v.numLayers());
        positive(file, "vision_config.num_attention_heads", v.numHeads());
        positive(file, "vision_config.intermediate_size", v.intermediateSize());
        if (v.numChannels() != 3)
            throw new BadInputException(file + ": \"vision_config.num_channels\" must be 3 (RGB), got " + v.numChannels());
        if (v.patchSize() > v.imageSize())
            throw new BadInputException(file + ": \"vision_config.patch_size\" " + v.patchSize() + " is larger than image_size " + v.imageSize());
        if (v.hiddenSize() % v.numHeads() != 0)
            throw new BadInputException(file + ": \"vision_config.hidden_size\" " + v.hiddenSize() + " is not a multiple of num_attention_heads "
                    + v.numHeads());
        if (!(v.layerNormEps() > 0 && v.layerNormEps() < 1))
            throw new BadInputException(file + ": \"vision_config.layer_norm_eps\" must be in (0, 1), got " + v.layerNormEps());
        long side = v.imageSize() / v.patchSize();
        fits(file, limit, "vision_config (image_size / patch_size)^2 x hidden_size", side, side, v.hiddenSize());
        fits(file, limit, "vision_config.patch_size^2 x 3 x hidden_size", v.patchSize(), v.patchSize(), 3, v.hiddenSize());
        fits(file, limit, "vision_config.intermediate_size x hidden_size", v.intermediateSize(), v.hiddenSize());
        fits(file, limit, "vision_config.num_hidden_layers x hidden_size", v.numLayers(), v.hiddenSize());
        ModelConfig.LlavaSettings l = c.llava();
        if (l.visionFeatureLayer() < -v.numLayers() || l.visionFeatureLayer() > v.numLayers())
            throw new BadInputException(file + ": \"vision_feature_layer\" " + l.visionFeatureLayer() + " is outside the "
                    + v.numLayers() + "-layer vision tower");
        if (l.imageTokenIndex() < 0 || l.imageTokenIndex() >= t.vocabSize())
            throw new BadInputException(file + ": \"image_token_index\" " + l.imageTokenIndex() + " is not a token of the "
                    + t.vocabSize() + "-token vocabulary");
    }

    private static void positive(Path file, String field, int value) {
        if (value < 1) throw new BadInputException(file + ": \"" + field + "\" must be >= 1, got " + value);
    }

    private static void fits(Path file, long limit, String what, long... dims) {
        SizeMath.productAtMost(limit, file + ": " + what + " needs more weights than the folder's weight files can hold ("
                + limit / WEIGHTS_PER_BYTE + " bytes): a size in the config is wrong", dims);
    }

    /** Weights the folder's safetensors files could hold at 2 bits each (unbounded when there are none yet). */
    private static long weightCapacity(Path dir) {
        long bytes = 0;
        if (dir != null) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
                for (Path f : ds) if (Files.isRegularFile(f)) bytes += Files.size(f);
            } catch (IOException e) {
                return Long.MAX_VALUE;
            }
        }
        return bytes == 0 ? Long.MAX_VALUE : SizeMath.multiply(bytes, WEIGHTS_PER_BYTE, "weights too large");
    }
}
