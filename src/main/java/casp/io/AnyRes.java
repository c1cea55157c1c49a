package casp.io;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;

/**
 * LLaVA-NeXT's "anyres" image geometry, as transformers' LlavaNextImageProcessor and
 * LlavaNextForConditionalGeneration compute it (sizes are [height, width] like theirs):
 * <ul>
 *   <li>{@link #bestResolution}: the grid pinpoint that keeps the most of the image's pixels when
 *       the image is scaled to fit it, ties broken by the least wasted area
 *       (select_best_resolution);</li>
 *   <li>{@link #tiles}: the image resized to fit that resolution keeping its aspect ratio
 *       (get_patch_output_size: the limiting side exactly, the other ceil(side * scale)), pasted
 *       centred on black (left/top padding = floor(gap / 2)), cut into square tiles row by row,
 *       preceded by the whole image squashed to one tile (the "base" image);</li>
 *   <li>{@link #unpaddedGrid}: the feature grid [rows, cols] left after the padding is cropped
 *       again in feature space (unpad_image);</li>
 *   <li>{@link #imageTokens}: the visual tokens of one image, base tile + unpadded grid + one
 *       image_newline per grid row.</li>
 * </ul>
 */
public final class AnyRes {
    private AnyRes() {}

    /** The best [height, width] among pinpoints for an image of the given size (select_best_resolution). */
    public static int[] bestResolution(int height, int width, int[][] pinpoints) {
        int[] best = null;
        long maxEffective = 0, minWasted = Long.MAX_VALUE;
        for (int[] pin : pinpoints) {
            int h = pin[0], w = pin[1];
            double scale = Math.min((double) w / width, (double) h / height);
            long downW = (long) (width * scale), downH = (long) (height * scale);
            long effective = Math.min(downW * downH, (long) width * height);
            long wasted = (long) w * h - effective;
            if (effective > maxEffective || (effective == maxEffective && wasted < minWasted)) {
                maxEffective = effective;
                minWasted = wasted;
                best = new int[]{h, w};
            }
        }
        if (best == null) throw new IllegalArgumentException("no grid pinpoint fits a " + width + "x" + height + " image");
        return best;
    }

    /** [height, width] of the image resized to fit target without changing its aspect ratio (get_patch_output_size). */
    public static int[] fittedSize(int height, int width, int targetHeight, int targetWidth) {
        double scaleW = (double) targetWidth / width, scaleH = (double) targetHeight / height;
        if (scaleW < scaleH) return new int[]{(int) Math.min(Math.ceil(height * scaleW), targetHeight), targetWidth};
        return new int[]{targetHeight, (int) Math.min(Math.ceil(width * scaleH), targetWidth)};
    }

    /** Tiles per column and per row of the best resolution: [rows, cols] (get_anyres_image_grid_shape). */
    public static int[] tileGrid(int height, int width, int[][] pinpoints, int tile) {
        int[] best = bestResolution(height, width, pinpoints);
        return new int[]{best[0] / tile, best[1] / tile};
    }

    /**
     * The feature grid [rows, cols] that remains of a padded gridRows x gridCols grid (in patches)
     * once the rows or columns that only cover padding are cropped (unpad_image).
     */
    public static int[] unpaddedGrid(int height, int width, int gridRows, int gridCols) {
        double originalAspect = (double) width / height, currentAspect = (double) gridCols / gridRows;
        if (originalAspect > currentAspect) {
            int newRows = (int) round7(height * ((double) gridCols / width));
            int padding = Math.floorDiv(gridRows - newRows, 2);
            return new int[]{gridRows - 2 * padding, gridCols};
        }
        int newCols = (int) round7(width * ((double) gridRows / height));
        int padding = Math.floorDiv(gridCols - newCols, 2);
        return new int[]{gridRows, gridCols - 2 * padding};
    }

    /** Python's round(x, 7): the exact binary value rounded half-even at the 7th decimal. */
    static double round7(double x) {
        return new BigDecimal(x).setScale(7, RoundingMode.HALF_EVEN).doubleValue();
    }

    /**
     * Visual tokens of one image of the given size: the base tile's patches plus, for the unpadded
     * grid of the tiles' patches, rows * (cols + 1) (an image_newline closes every row).
     *
     * @param tile  the vision tower's image_size (one tile's side in pixels)
     * @param patch the vision tower's patch_size
     */
    public static int imageTokens(int height, int width, int[][] pinpoints, int tile, int patch) {
        int g = tile / patch;
        int[] grid = tileGrid(height, width, pinpoints, tile);
        int[] kept = unpaddedGrid(height, width, grid[0] * g, grid[1] * g);
        return g * g + kept[0] * (kept[1] + 1);
    }

    /**
     * The images that go through the vision tower for one picture: first the whole picture resized
     * (squashed) to baseSize x baseSize, then the tiles of the picture fitted to its best resolution
     * and padded with black, row by row. Each still needs the per-tile CLIP preprocessing.
     */
    public static List<ImagePreprocessor.RgbImage> tiles(ImagePreprocessor.RgbImage img, int[][] pinpoints, int tile,
                                                        int baseSize, int resample) {
        int[] best = bestResolution(img.height(), img.width(), pinpoints);
        int[] fit = fittedSize(img.height(), img.width(), best[0], best[1]);
        ImagePreprocessor.RgbImage resized = ImagePreprocessor.resize(img, fit[1], fit[0], resample);
        int top = (best[0] - fit[0]) / 2, left = (best[1] - fit[1]) / 2;
        byte[] padded = new byte[3 * best[0] * best[1]];
        for (int y = 0; y < fit[0]; y++)
            System.arraycopy(resized.rgb(), 3 * y * fit[1], padded, 3 * ((y + top) * best[1] + left), 3 * fit[1]);
        List<ImagePreprocessor.RgbImage> out = new ArrayList<>();
        out.add(ImagePreprocessor.resize(img, baseSize, baseSize, resample));
        for (int ty = 0; ty < best[0]; ty += tile) {
            for (int tx = 0; tx < best[1]; tx += tile) {
                byte[] t = new byte[3 * tile * tile];
                for (int y = 0; y < tile; y++)
                    System.arraycopy(padded, 3 * ((ty + y) * best[1] + tx), t, 3 * y * tile, 3 * tile);
                out.add(new ImagePreprocessor.RgbImage(tile, tile, t));
            }
        }
        return out;
    }
}
