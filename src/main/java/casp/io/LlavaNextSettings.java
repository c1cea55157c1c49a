package casp.io;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The config.json keys that LLaVA-NeXT (llava_next) and LLaVA-NeXT-Video (llava_next_video) add to
 * LLaVA's: the anyres resolutions {@code image_grid_pinpoints} ([height, width] pairs), and for
 * video the placeholder id {@code video_token_index} and the spatial pooling of each frame's
 * patch grid ({@code spatial_pool_mode} "average" or "max", {@code spatial_pool_stride}).
 * Missing keys take transformers' defaults.
 */
public record LlavaNextSettings(int[][] gridPinpoints, int videoTokenIndex, String spatialPoolMode, int spatialPoolStride,
                                boolean video) {

    /** LlavaNextConfig's default image_grid_pinpoints. */
    public static final int[][] DEFAULT_PINPOINTS = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

    /** The settings of a llava_next or llava_next_video config. */
    public static LlavaNextSettings of(ModelConfig cfg) {
        if (!cfg.isLlavaNext())
            throw new BadInputException(cfg.file() + ": not a LLaVA-NeXT model (model_type '" + cfg.modelType() + "')");
        JsonNode raw = cfg.raw();
        int[][] pins = DEFAULT_PINPOINTS;
        JsonNode p = raw.get("image_grid_pinpoints");
        if (p != null && !p.isNull()) {
            if (!p.isArray() || p.isEmpty())
                throw new BadInputException(cfg.file() + ": image_grid_pinpoints must be a non-empty list of [height, width] pairs");
            pins = new int[p.size()][];
            for (int i = 0; i < p.size(); i++) {
                JsonNode e = p.get(i);
                if (!e.isArray() || e.size() != 2 || !e.get(0).canConvertToInt() || !e.get(1).canConvertToInt()
                        || e.get(0).asInt() <= 0 || e.get(1).asInt() <= 0)
                    throw new BadInputException(cfg.file() + ": image_grid_pinpoints[" + i + "] is " + e
                            + ", expected [height, width] with positive integers");
                pins[i] = new int[]{e.get(0).asInt(), e.get(1).asInt()};
            }
        }
        int tile = cfg.vision().imageSize();
        for (int[] pin : pins)
            if (pin[0] % tile != 0 || pin[1] % tile != 0)
                throw new BadInputException(cfg.file() + ": image_grid_pinpoints entry [" + pin[0] + ", " + pin[1]
                        + "] is not a multiple of the vision tower's image_size " + tile);
        if (!cfg.llava().featureSelectStrategy().equals("default"))
            throw new BadInputException(cfg.file() + ": vision_feature_select_strategy '" + cfg.llava().featureSelectStrategy()
                    + "' is not supported for " + cfg.modelType() + " (its patch grid needs 'default': the class token dropped)");
        boolean video = cfg.modelType().equals("llava_next_video");
        String mode = raw.path("spatial_pool_mode").asText("average");
        int stride = raw.path("spatial_pool_stride").asInt(2);
        if (video && !mode.equals("average") && !mode.equals("max"))
            throw new BadInputException(cfg.file() + ": unsupported spatial_pool_mode '" + mode + "' (supported: average, max)");
        if (video && (stride <= 0 || stride > cfg.vision().imageSize() / cfg.vision().patchSize()))
            throw new BadInputException(cfg.file() + ": spatial_pool_stride " + stride + " does not fit the "
                    + cfg.vision().imageSize() / cfg.vision().patchSize() + "-patch grid");
        return new LlavaNextSettings(pins, raw.path("video_token_index").asInt(32000), mode, stride, video);
    }
}
