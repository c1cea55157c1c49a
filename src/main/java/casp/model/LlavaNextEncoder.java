package casp.model;

import casp.io.AnyRes;
import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import casp.io.LlavaNextSettings;
import casp.io.ModelFolder;
import casp.io.VideoFrames;
import casp.kernel.SpatialPool;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The visual side of LLaVA-NeXT and LLaVA-NeXT-Video, on top of LLaVA's tower and projector
 * ({@link LlavaImageEncoder}), as transformers' LlavaNext(Video)ForConditionalGeneration does it.
 *
 * <p>Images (anyres): the picture becomes a base tile (the whole picture squashed) and the tiles
 * of its best grid resolution ({@link AnyRes#tiles}); every tile goes through the tower, the
 * feature selection and the projector (g x g tokens each, g = image_size / patch_size). The
 * visual tokens are the base tile's g*g rows, then the tiles' rows laid out as one
 * (rows * g) x (cols * g) grid, cropped to the picture's aspect ratio ({@link AnyRes#unpaddedGrid}),
 * row by row, each grid row followed by the {@code image_newline} vector.
 *
 * <p>Videos: every frame through the tower (CLIP preprocessing, no tiling), its g x g patch
 * features pooled with spatial_pool_mode / spatial_pool_stride in the vision width, then
 * projected; the frames' rows follow each other with no separator.
 */
public final class LlavaNextEncoder {
    private final LlavaImageEncoder base;
    private final LlavaNextSettings settings;
    private final float[] imageNewline;
    private final ImagePreprocessor videoPreprocessor;
    private final int defaultFrames;
    private final int side;
    private long towerNanos, projectorNanos;

    public LlavaNextEncoder(LlavaImageEncoder base, LlavaNextSettings settings, float[] imageNewline,
                            ImagePreprocessor videoPreprocessor, int defaultFrames) {
        this.base = base;
        this.settings = settings;
        this.imageNewline = imageNewline;
        this.videoPreprocessor = videoPreprocessor;
        this.defaultFrames = defaultFrames;
        var vc = base.tower().config();
        this.side = vc.imageSize() / vc.patchSize();
        if (imageNewline.length != base.embeddingSize())
            throw new BadInputException("image_newline has " + imageNewline.length + " values, the language model's hidden size is "
                    + base.embeddingSize());
    }

    /**
     * Loads the LLaVA-NeXT parts of a folder: image_newline (or model.image_newline), the grid
     * settings, and the video preprocessor (video_preprocessor_config.json, else the image one).
     */
    public static LlavaNextEncoder load(ModelFolder folder, LlavaImageEncoder base) {
        LlavaNextSettings s = LlavaNextSettings.of(folder.config());
        String name = folder.weights().has("image_newline") ? "image_newline" : "model.image_newline";
        if (!folder.weights().has(name))
            throw new BadInputException(folder.dir() + ": " + folder.config().modelType() + " model without image_newline tensor");
        float[] newline = folder.weights().floats(name, folder.config().text().hiddenSize());
        Path videoConfig = folder.file("video_preprocessor_config.json");
        ImagePreprocessor video = Files.isRegularFile(videoConfig) ? ImagePreprocessor.load(videoConfig) : base.preprocessor();
        int frames = VideoFrames.defaultFrames(videoConfig, folder.file("preprocessor_config.json"));
        return new LlavaNextEncoder(base, s, newline, video, frames);
    }

    public LlavaNextSettings settings() { return settings; }

    /** Frames sampled from a video when the caller does not say (the processor config's num_frames, else 8). */
    public int defaultFrames() { return defaultFrames; }

    /** Visual tokens of an image of the given size. */
    public int imageTokens(int height, int width) {
        var vc = base.tower().config();
        return AnyRes.imageTokens(height, width, settings.gridPinpoints(), vc.imageSize(), vc.patchSize());
    }

    /** Visual tokens of one video frame: the pooled patch grid. */
    public int tokensPerFrame() {
        int p = SpatialPool.pooledSide(side, settings.spatialPoolStride());
        return p * p;
    }

    /** Seconds spent in the vision tower and in the projector since the last {@link #resetTimes()}. */
    public double towerSeconds() { return towerNanos / 1e9; }

    public double projectorSeconds() { return projectorNanos / 1e9; }

    public void resetTimes() {
        towerNanos = 0;
        projectorNanos = 0;
    }

    /** Selected tower features [side * side, visionHidden] of preprocessed pixels. */
    private float[] tower(float[] pixels) {
        long t0 = System.nanoTime();
        float[] f = base.selectedFeatures(pixels);
        towerNanos += System.nanoTime() - t0;
        return f;
    }

    private float[] project(float[] features, int rows) {
        long t0 = System.nanoTime();
        float[] y = base.projector().forward(features, rows);
        projectorNanos += System.nanoTime() - t0;
        return y;
    }

    /** The visual tokens of a decoded image: [imageTokens(h, w), hidden]. */
    public float[] encodeImage(ImagePreprocessor.RgbImage img) {
        ImagePreprocessor pp = base.preprocessor();
        int tile = base.tower().config().imageSize();
        List<ImagePreprocessor.RgbImage> tiles = AnyRes.tiles(img, settings.gridPinpoints(), tile, pp.shortestEdge(), pp.resample());
        int per = side * side, h = base.embeddingSize();
        float[][] feats = new float[tiles.size()][];
        for (int i = 0; i < tiles.size(); i++) feats[i] = project(tower(pp.process(tiles.get(i))), per);
        int[] grid = AnyRes.tileGrid(img.height(), img.width(), settings.gridPinpoints(), tile);
        int rows = grid[0] * side, cols = grid[1] * side;
        int[] kept = AnyRes.unpaddedGrid(img.height(), img.width(), rows, cols);
        int top = (rows - kept[0]) / 2, left = (cols - kept[1]) / 2;
        float[] out = new float[(per + kept[0] * (kept[1] + 1)) * h];
        System.arraycopy(feats[0], 0, out, 0, per * h);
        int r = per;
        for (int y = top; y < top + kept[0]; y++) {
            for (int x = left; x < left + kept[1]; x++) {
                // Grid cell (y, x) is token (y % side, x % side) of tile (y / side, x / side).
                float[] t = feats[1 + (y / side) * grid[1] + x / side];
                System.arraycopy(t, ((y % side) * side + x % side) * h, out, r++ * h, h);
            }
            System.arraycopy(imageNewline, 0, out, r++ * h, h);
        }
        return out;
    }

    /** The visual tokens of video frames: [frames * tokensPerFrame(), hidden]. */
    public float[] encodeVideo(List<ImagePreprocessor.RgbImage> frames) {
        if (!settings.video()) throw new BadInputException("a llava_next model takes no video input (llava_next_video does)");
        int per = tokensPerFrame(), h = base.embeddingSize(), vh = base.tower().hiddenSize();
        float[] out = new float[frames.size() * per * h];
        for (int f = 0; f < frames.size(); f++) {
            float[] sel = tower(videoPreprocessor.process(frames.get(f)));
            float[] pooled = settings.spatialPoolMode().equals("max")
                    ? SpatialPool.max(sel, 0, side, vh, settings.spatialPoolStride())
                    : SpatialPool.average(sel, 0, side, vh, settings.spatialPoolStride());
            System.arraycopy(project(pooled, per), 0, out, f * per * h, per * h);
        }
        return out;
    }
}
