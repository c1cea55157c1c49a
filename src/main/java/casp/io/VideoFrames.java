package casp.io;

import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import java.awt.AlphaComposite;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The frames of a video input, sampled uniformly: frame i of n is source frame
 * floor(i * total / n) (numpy's {@code arange(0, total, total / n).astype(int)}, as the LLaVA-NeXT-Video
 * examples sample), so a clip shorter than n frames repeats frames. A video is
 * <ul>
 *   <li>a folder of frame images (PNG, JPEG, BMP, GIF), in file-name order;</li>
 *   <li>an animated GIF (frames composited on the logical screen with their offsets, transparency
 *       and disposal methods);</li>
 *   <li>an MP4 / MOV / M4V holding H.264, decoded in pure Java by jcodec ({@link Mp4Video}).</li>
 * </ul>
 * Anything else, or a damaged file, is a {@link BadInputException} naming the file.
 */
public final class VideoFrames {
    private VideoFrames() {}

    private static final List<String> IMAGE_EXTENSIONS = List.of(".png", ".jpg", ".jpeg", ".bmp", ".gif");

    /** Source frame indices of n uniformly sampled frames out of total. */
    public static int[] sampleIndices(int total, int n) {
        if (total <= 0 || n <= 0) throw new IllegalArgumentException("need frames: total " + total + ", n " + n);
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = (int) ((long) i * total / n);
        return idx;
    }

    /** n frames of the video at path (a folder, a .gif, or an H.264 .mp4/.mov/.m4v), uniformly sampled. */
    public static List<ImagePreprocessor.RgbImage> read(Path path, int n) {
        if (n <= 0) throw new BadInputException("--frames must be positive, got " + n);
        if (Files.isDirectory(path)) return readFolder(path, n);
        if (!Files.isRegularFile(path)) throw new BadInputException(path + ": no such video file or frame folder");
        String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".gif")) return readGif(path, n);
        if (name.endsWith(".mp4") || name.endsWith(".mov") || name.endsWith(".m4v")) return Mp4Video.read(path, n);
        throw new BadInputException(path + ": unsupported video format (supported: a folder of frames, .gif, H.264 .mp4/.mov/.m4v)");
    }

    private static List<ImagePreprocessor.RgbImage> readFolder(Path dir, int n) {
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(Files::isRegularFile).filter(p -> {
                String f = p.getFileName().toString().toLowerCase(Locale.ROOT);
                return IMAGE_EXTENSIONS.stream().anyMatch(f::endsWith);
            }).sorted().toList();
        } catch (IOException e) {
            throw new BadInputException(dir + ": cannot list frames: " + e.getMessage());
        }
        if (files.isEmpty()) throw new BadInputException(dir + ": no frame images (.png, .jpg, .jpeg, .bmp, .gif) in the folder");
        List<ImagePreprocessor.RgbImage> out = new ArrayList<>(n);
        Map<Integer, ImagePreprocessor.RgbImage> decoded = new HashMap<>();
        long bytes = 0;
        for (int i : sampleIndices(files.size(), n)) {
            ImagePreprocessor.RgbImage frame = decoded.get(i);
            if (frame == null) {
                frame = ImagePreprocessor.decode(files.get(i)); // each image within ImageLimits
                bytes += frame.rgb().length;
                if (bytes > frameBudget())
                    throw new BadInputException(dir + ": " + decoded.size() + " frames already hold " + (bytes >> 20)
                            + " MiB, over the budget of " + (frameBudget() >> 20) + " MiB (half the heap); sample fewer frames (--frames)");
                decoded.put(i, frame);
            }
            out.add(frame);
        }
        return out;
    }

    /** Bytes the decoded frames of one video may take: half the heap. */
    static long frameBudget() {
        return Runtime.getRuntime().maxMemory() / 2;
    }

    /**
     * Refuses frames of width x height over the pixel limit, or n of them kept (3 bytes a pixel)
     * plus workingBytesPerPixel of decoder state over {@link #frameBudget()}, before any is decoded.
     */
    static void checkFrameBudget(Path file, int n, long width, long height, long workingBytesPerPixel) {
        ImageLimits.check(file, "video frame", width, height);
        long bytes = width * height * (3L * n + workingBytesPerPixel);
        if (bytes > frameBudget())
            throw new BadInputException(file + ": " + n + " frames of " + width + "x" + height + " need about " + (bytes >> 20)
                    + " MiB to decode, over the budget of " + (frameBudget() >> 20)
                    + " MiB (half the heap); sample fewer frames (--frames) or use a smaller video");
    }

    // ---------------------------------------------------------------- GIF

    private static List<ImagePreprocessor.RgbImage> readGif(Path file, int n) {
        List<ImagePreprocessor.RgbImage> all = new ArrayList<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            var readers = ImageIO.getImageReadersByFormatName("gif");
            if (in == null || !readers.hasNext()) throw new BadInputException(file + ": cannot open GIF");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, false);
                int total = reader.getNumImages(true);
                if (total <= 0) throw new BadInputException(file + ": GIF without frames");
                int[] wanted = sampleIndices(total, n);
                int last = wanted[n - 1];
                BufferedImage canvas = null;
                ImagePreprocessor.RgbImage[] frames = new ImagePreprocessor.RgbImage[last + 1];
                boolean[] keep = new boolean[last + 1];
                for (int i : wanted) keep[i] = true;
                int distinct = (int) Arrays.stream(wanted).distinct().count();
                for (int i = 0; i <= last; i++) {
                    // Sizes come from the headers: checked before any pixel is decoded (a GIF bomb).
                    ImageLimits.check(file, "GIF frame " + i, reader.getWidth(i), reader.getHeight(i));
                    GifFrame meta = GifFrame.of(reader.getImageMetadata(i));
                    if (canvas == null) {
                        int[] screen = logicalScreen(reader, reader.getWidth(i), reader.getHeight(i), meta);
                        // The canvas (4 bytes a pixel), a copy of it, the frame and its RGB conversion.
                        checkFrameBudget(file, distinct, screen[0], screen[1], 16);
                        canvas = new BufferedImage(screen[0], screen[1], BufferedImage.TYPE_INT_ARGB);
                    }
                    BufferedImage frame = reader.read(i);
                    BufferedImage before = meta.disposal.equals("restoreToPrevious") ? copy(canvas) : null;
                    Graphics2D g = canvas.createGraphics();
                    g.drawImage(frame, meta.left, meta.top, null);
                    g.dispose();
                    if (keep[i]) frames[i] = ImagePreprocessor.toRgb(opaque(canvas));
                    if (meta.disposal.equals("restoreToBackgroundColor")) {
                        Graphics2D c = canvas.createGraphics();
                        c.setComposite(AlphaComposite.Clear);
                        c.fillRect(meta.left, meta.top, frame.getWidth(), frame.getHeight());
                        c.dispose();
                    } else if (before != null) {
                        canvas = before;
                    }
                }
                for (int i : wanted) all.add(frames[i]);
            } finally {
                reader.dispose();
            }
        } catch (BadInputException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new BadInputException(file + ": cannot decode GIF: " + e.getMessage());
        }
        return all;
    }

    private record GifFrame(int left, int top, String disposal) {
        static GifFrame of(IIOMetadata m) {
            int left = 0, top = 0;
            String disposal = "none";
            Node root = m.getAsTree("javax_imageio_gif_image_1.0");
            for (Node c = root.getFirstChild(); c != null; c = c.getNextSibling()) {
                NamedNodeMap a = c.getAttributes();
                if (c.getNodeName().equals("ImageDescriptor")) {
                    left = Integer.parseInt(a.getNamedItem("imageLeftPosition").getNodeValue());
                    top = Integer.parseInt(a.getNamedItem("imageTopPosition").getNodeValue());
                } else if (c.getNodeName().equals("GraphicControlExtension")) {
                    disposal = a.getNamedItem("disposalMethod").getNodeValue();
                }
            }
            return new GifFrame(left, top, disposal);
        }
    }

    /** The GIF's logical screen size, or the first frame's extent when the stream metadata has none. */
    private static int[] logicalScreen(ImageReader reader, int firstWidth, int firstHeight, GifFrame meta) throws IOException {
        IIOMetadata sm = reader.getStreamMetadata();
        if (sm != null) {
            Node root = sm.getAsTree("javax_imageio_gif_stream_1.0");
            for (Node c = root.getFirstChild(); c != null; c = c.getNextSibling()) {
                if (!c.getNodeName().equals("LogicalScreenDescriptor")) continue;
                int w = Integer.parseInt(c.getAttributes().getNamedItem("logicalScreenWidth").getNodeValue());
                int h = Integer.parseInt(c.getAttributes().getNamedItem("logicalScreenHeight").getNodeValue());
                if (w > 0 && h > 0) return new int[]{w, h};
            }
        }
        return new int[]{meta.left + firstWidth, meta.top + firstHeight};
    }

    private static BufferedImage copy(BufferedImage img) {
        BufferedImage c = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_ARGB);
        Graphics2D g = c.createGraphics();
        g.drawImage(img, 0, 0, null);
        g.dispose();
        return c;
    }

    /** The canvas as RGB, where nothing has been drawn yet black (alpha dropped, as PIL's convert("RGB")). */
    private static BufferedImage opaque(BufferedImage argb) {
        BufferedImage rgb = new BufferedImage(argb.getWidth(), argb.getHeight(), BufferedImage.TYPE_3BYTE_BGR);
        int[] row = new int[argb.getWidth()];
        for (int y = 0; y < argb.getHeight(); y++) {
            argb.getRGB(0, y, row.length, 1, row, 0, row.length);
            for (int x = 0; x < row.length; x++) row[x] &= 0xFFFFFF;
            rgb.setRGB(0, y, row.length, 1, row, 0, row.length);
        }
        return rgb;
    }

    /** Frames requested by a processor config ("num_frames"), or fallback. */
    public static int defaultFrames(Path... processorConfigs) {
        for (Path p : processorConfigs) {
            if (!Files.isRegularFile(p)) continue;
            try {
                var n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(p.toFile()).get("num_frames");
                if (n != null && n.canConvertToInt() && n.asInt() > 0) return n.asInt();
            } catch (IOException e) {
                throw new BadInputException(p + ": not valid JSON: " + e.getMessage());
            }
        }
        return 8;
    }
}
