package casp.io;

import org.jcodec.api.SequenceEncoder;
import org.jcodec.common.model.ColorSpace;
import org.jcodec.common.model.Picture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Frame sampling and decoding of frame folders, animated GIFs and H.264 MP4s; damaged input is one clear error. */
class VideoFramesTest {
    @TempDir
    Path tmp;

    /** Eight distinct colours, as (r, g, b). */
    static final int[][] COLORS = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}, {255, 255, 0},
            {0, 255, 255}, {128, 64, 32}};

    static BufferedImage solid(int[] c, int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (c[0] << 16) | (c[1] << 8) | c[2]);
        return img;
    }

    static void assertColor(int[] want, ImagePreprocessor.RgbImage img, int tolerance, String what) {
        byte[] p = img.rgb();
        for (int i = 0; i < p.length; i += 3)
            for (int c = 0; c < 3; c++)
                assertEquals(want[c], p[i + c] & 0xff, tolerance, what + " pixel " + i / 3 + " channel " + c);
    }

    @Test
    void uniformSampling() {
        assertArrayEquals(new int[]{0, 1, 2, 3}, VideoFrames.sampleIndices(5, 4));
        assertArrayEquals(new int[]{0, 2, 5, 7}, VideoFrames.sampleIndices(10, 4));
        assertArrayEquals(new int[]{0, 0, 0, 1, 1, 1, 2, 2}, VideoFrames.sampleIndices(3, 8), "short clips repeat frames");
        assertArrayEquals(new int[]{0}, VideoFrames.sampleIndices(1, 1));
    }

    @Test
    void folderFramesInNameOrder() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("frames"));
        for (int i = 4; i >= 0; i--) ImageIO.write(solid(COLORS[i], 7, 5), "png", dir.resolve("f" + i + ".png").toFile());
        Files.writeString(dir.resolve("notes.txt"), "not a frame");
        List<ImagePreprocessor.RgbImage> f = VideoFrames.read(dir, 3); // indices 0, 1, 3
        assertEquals(3, f.size());
        assertColor(COLORS[0], f.get(0), 0, "frame 0");
        assertColor(COLORS[1], f.get(1), 0, "frame 1");
        assertColor(COLORS[3], f.get(2), 0, "frame 3");
    }

    static Path gif(Path file, int frames) throws IOException {
        byte[] r = new byte[8], g = new byte[8], b = new byte[8];
        for (int i = 0; i < 8; i++) {
            r[i] = (byte) COLORS[i][0];
            g[i] = (byte) COLORS[i][1];
            b[i] = (byte) COLORS[i][2];
        }
        IndexColorModel palette = new IndexColorModel(3, 8, r, g, b);
        ImageWriter w = ImageIO.getImageWritersByFormatName("gif").next();
        try (ImageOutputStream out = ImageIO.createImageOutputStream(file.toFile())) {
            w.setOutput(out);
            w.prepareWriteSequence(null);
            for (int i = 0; i < frames; i++) {
                BufferedImage img = new BufferedImage(9, 6, BufferedImage.TYPE_BYTE_INDEXED, palette);
                for (int y = 0; y < 6; y++) for (int x = 0; x < 9; x++) img.getRaster().setSample(x, y, 0, i % 8);
                w.writeToSequence(new IIOImage(img, null, null), null);
            }
            w.endWriteSequence();
        } finally {
            w.dispose();
        }
        return file;
    }

    @Test
    void animatedGifFramesExactly() throws IOException {
        Path f = gif(tmp.resolve("clip.gif"), 6);
        List<ImagePreprocessor.RgbImage> frames = VideoFrames.read(f, 3); // indices 0, 2, 4
        assertEquals(3, frames.size());
        assertEquals(9, frames.get(0).width());
        assertEquals(6, frames.get(0).height());
        for (int k = 0; k < 3; k++) assertColor(COLORS[2 * k], frames.get(k), 0, "gif frame " + 2 * k);
    }

    @Test
    void h264Mp4DecodedInPureJava() throws IOException {
        Path f = tmp.resolve("clip.mp4");
        SequenceEncoder enc = SequenceEncoder.createSequenceEncoder(f.toFile(), 4);
        for (int i = 0; i < 4; i++) {
            Picture pic = Picture.create(32, 32, ColorSpace.RGB);
            byte[] d = pic.getPlaneData(0);
            for (int p = 0; p < 32 * 32; p++) for (int c = 0; c < 3; c++) d[3 * p + c] = (byte) (COLORS[i][c] - 128);
            enc.encodeNativeFrame(pic);
        }
        enc.finish();
        List<ImagePreprocessor.RgbImage> frames = VideoFrames.read(f, 4);
        assertEquals(4, frames.size());
        assertEquals(32, frames.get(0).width());
        // Lossy coding and limited-range YUV: each colour within 12 levels.
        for (int i = 0; i < 4; i++) assertColor(COLORS[i], frames.get(i), 12, "mp4 frame " + i);
        assertColor(COLORS[0], VideoFrames.read(f, 8).get(1), 12, "8 of 4 frames repeat frame 0");
    }

    @Test
    void gifWithAHugeLogicalScreenIsRefusedBeforeDecoding() throws IOException {
        // A GIF bomb: a 9 x 6 animation whose header claims a 65535 x 65535 screen (16 GiB as ARGB).
        byte[] bytes = Files.readAllBytes(gif(tmp.resolve("small.gif"), 3));
        for (int i = 6; i < 10; i++) bytes[i] = (byte) 0xFF; // logical screen width and height, little-endian
        Path bomb = Files.write(tmp.resolve("bomb.gif"), bytes);
        BadInputException e = assertThrows(BadInputException.class, () -> VideoFrames.read(bomb, 2));
        assertTrue(e.getMessage().startsWith(bomb + ": video frame of 65535x65535 pixels is over the limit"), e.getMessage());
    }

    @Test
    void damagedOrUnsupportedVideoIsOneClearError() throws IOException {
        Path good = gif(tmp.resolve("ok.gif"), 3);
        byte[] bytes = Files.readAllBytes(good);
        Path cutGif = Files.write(tmp.resolve("cut.gif"), Arrays.copyOf(bytes, bytes.length / 2));
        Path junkMp4 = Files.write(tmp.resolve("junk.mp4"), "definitely not an mp4 file".repeat(20).getBytes());
        Path avi = Files.write(tmp.resolve("clip.avi"), new byte[100]);
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        for (Path p : List.of(cutGif, junkMp4, avi, empty, tmp.resolve("missing.mp4"))) {
            BadInputException e = assertThrows(BadInputException.class, () -> VideoFrames.read(p, 4), p.toString());
            assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
        assertThrows(BadInputException.class, () -> VideoFrames.read(good, 0));
    }
}
