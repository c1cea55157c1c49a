// Compares casp's decode of a video with ffmpeg's, frame by frame:
//   java -cp target/casp.jar src/scripts/VideoVsFfmpeg.java VIDEO FFMPEG_PNG_DIR
// FFMPEG_PNG_DIR holds ffmpeg's decode of every shown frame, in order (video-vs-ffmpeg.sh makes it).
// casp samples as many frames as there are PNGs (so every frame once) and prints the mean
// absolute error per frame in 8-bit levels (0 to 255, over R, G and B), then their mean.
import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import casp.io.VideoFrames;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

public class VideoVsFfmpeg {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: java -cp target/casp.jar VideoVsFfmpeg.java VIDEO FFMPEG_PNG_DIR");
            System.exit(2);
        }
        File[] refs = new File(args[1]).listFiles((d, f) -> f.endsWith(".png"));
        if (refs == null || refs.length == 0) {
            System.err.println(args[1] + ": no PNG frames");
            System.exit(2);
        }
        Arrays.sort(refs);
        List<ImagePreprocessor.RgbImage> frames;
        try {
            frames = VideoFrames.read(Path.of(args[0]), refs.length);
        } catch (BadInputException e) {
            System.out.println("refused: " + e.getMessage());
            return;
        }
        StringBuilder line = new StringBuilder();
        double total = 0;
        for (int i = 0; i < refs.length; i++) {
            BufferedImage ref = ImageIO.read(refs[i]);
            ImagePreprocessor.RgbImage f = frames.get(i);
            if (ref.getWidth() != f.width() || ref.getHeight() != f.height()) {
                System.out.printf("frame %d: casp %dx%d, ffmpeg %dx%d%n", i, f.width(), f.height(), ref.getWidth(), ref.getHeight());
                return;
            }
            double sum = 0;
            byte[] p = f.rgb();
            for (int y = 0; y < ref.getHeight(); y++) {
                for (int x = 0; x < ref.getWidth(); x++) {
                    int c = ref.getRGB(x, y), o = 3 * (y * ref.getWidth() + x);
                    sum += Math.abs(((c >> 16) & 255) - (p[o] & 255)) + Math.abs(((c >> 8) & 255) - (p[o + 1] & 255))
                            + Math.abs((c & 255) - (p[o + 2] & 255));
                }
            }
            double mae = sum / (3.0 * ref.getWidth() * ref.getHeight());
            total += mae;
            line.append(String.format(Locale.ROOT, " %.2f", mae));
        }
        System.out.printf(Locale.ROOT, "%d frames %dx%d, mean abs error per frame:%s; mean %.2f%n", refs.length,
                frames.get(0).width(), frames.get(0).height(), line, total / refs.length);
    }
}
