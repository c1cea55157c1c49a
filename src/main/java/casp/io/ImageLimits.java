package casp.io;

import java.nio.file.Path;

/**
 * The pixel budget of image preprocessing. An image's size is read from its header and checked
 * before any pixel is decoded, so a small file that claims 30000 x 30000 pixels (a decompression
 * bomb) is refused instead of filling the heap; the size an image is resized to is checked the
 * same way, so a 1000000 x 1 strip is refused rather than stretched to 336 x 336000000.
 */
public final class ImageLimits {
    private ImageLimits() {}

    /** Pillow refuses images over twice its MAX_IMAGE_PIXELS (89478485) too; we refuse above it. */
    static final long PIL_MAX_PIXELS = 89_478_485L;
    /** Decoding, RGB conversion and the two resize passes hold about this many bytes per pixel. */
    static final long BYTES_PER_PIXEL = 24;

    /** Largest number of pixels decoded or produced by a resize: Pillow's limit, or less on a small heap. */
    public static long maxPixels() {
        return Math.min(PIL_MAX_PIXELS, Runtime.getRuntime().maxMemory() / BYTES_PER_PIXEL);
    }

    /** Refuses an image whose header claims more pixels than the budget (what = "image" or "resized image"). */
    static void check(Path file, String what, long width, long height) {
        String where = file == null ? "" : file + ": ";
        if (width < 1 || height < 1)
            throw new BadInputException(where + what + " has size " + width + "x" + height);
        long max = maxPixels();
        if (width > max || height > max || width * height > max)
            throw new BadInputException(where + what + " of " + width + "x" + height + " pixels is over the limit of "
                    + max + " pixels (a decompression bomb, or an extreme aspect ratio)");
    }
}
