package casp.io;

import casp.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class ImagePreprocessorTest {

    static Path shared() {
        return TestData.shared("");
    }

    /**
     * Every photo at 224 and 336 against transformers' CLIPImageProcessor (Pillow bicubic).
     * Tolerance: we replicate Pillow's fixed-point resampler and transformers' float64-then-float32
     * rescale/normalise, so PNGs must agree to float32 rounding (1e-6; measured: bit-identical).
     * The JPEG goes through the JDK's libjpeg rather than Pillow's libjpeg-turbo: both use the
     * same integer IDCT and fancy upsampling, so it is bit-identical here too, but another JDK
     * build may differ by one 8-bit level on a few pixels, so for it we allow one level
     * (1 / 255 / min std = 0.0152) per pixel and a mean difference under 1e-4.
     */
    @Test
    void matchesHuggingFaceReferenceOnRealPhotos() {
        Path dir = shared().resolve("images");
        SafeTensorsFile ref = SafeTensorsFile.open(dir.resolve("reference/clip_preprocess.safetensors"));
        String[] files = {"astronaut.png", "camera.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "logo.png"};
        int checked = 0;
        for (String f : files) {
            for (int s : new int[]{224, 336}) {
                String name = f.substring(0, f.indexOf('.')) + "." + s;
                float[] want = ref.readFloats(name);
                ImagePreprocessor pp = ImagePreprocessor.clip(s);
                float[] got = pp.process(dir.resolve("photos").resolve(f));
                assertEquals(want.length, got.length, name);
                assertEquals(3 * s * s, got.length, name);
                double max = 0, sum = 0;
                for (int i = 0; i < want.length; i++) {
                    double d = Math.abs(want[i] - got[i]);
                    max = Math.max(max, d);
                    sum += d;
                }
                boolean jpeg = f.endsWith(".jpg");
                assertTrue(max <= (jpeg ? 1.0 / 255 / 0.2613 + 1e-6 : 1e-6), name + " max abs diff " + max);
                assertTrue(sum / want.length <= (jpeg ? 1e-4 : 1e-7), name + " mean abs diff " + sum / want.length);
                checked++;
            }
        }
        assertEquals(12, checked);
    }

    @Test
    void truncatedJpegIsBadInputNamingTheFile() {
        Path f = shared().resolve("images/photos/truncated.jpg");
        BadInputException e = assertThrows(BadInputException.class, () -> ImagePreprocessor.clip(224).process(f));
        assertTrue(e.getMessage().contains("truncated.jpg"), e.getMessage());
    }

    @Test
    void jpegCutInTheScanDataIsRejected(@TempDir Path tmp) throws Exception {
        // ImageIO decodes such a file without error (gray fill + a warning); we must not.
        byte[] whole = Files.readAllBytes(shared().resolve("images/photos/hubble_deep_field.jpg"));
        Path cut = tmp.resolve("cut.jpg");
        Files.write(cut, Arrays.copyOf(whole, whole.length / 2));
        BadInputException e = assertThrows(BadInputException.class, () -> ImagePreprocessor.decode(cut));
        assertTrue(e.getMessage().contains("cut.jpg"), e.getMessage());
        // Also without the end-of-image check: a cut file with an EOI appended still has damaged scan data.
        byte[] patched = Arrays.copyOf(whole, whole.length / 2 + 2);
        patched[patched.length - 2] = (byte) 0xFF;
        patched[patched.length - 1] = (byte) 0xD9;
        Path cut2 = tmp.resolve("cut2.jpg");
        Files.write(cut2, patched);
        BadInputException e2 = assertThrows(BadInputException.class, () -> ImagePreprocessor.decode(cut2));
        assertTrue(e2.getMessage().contains("cut2.jpg"), e2.getMessage());
    }

    @Test
    void unreadableFilesAreBadInput(@TempDir Path tmp) throws Exception {
        Path missing = tmp.resolve("missing.png");
        assertTrue(assertThrows(BadInputException.class, () -> ImagePreprocessor.decode(missing)).getMessage().contains("missing.png"));
        Path text = tmp.resolve("notes.png");
        Files.writeString(text, "not an image");
        assertTrue(assertThrows(BadInputException.class, () -> ImagePreprocessor.decode(text)).getMessage().contains("notes.png"));
        byte[] png = Files.readAllBytes(shared().resolve("images/photos/chelsea.png"));
        Path cut = tmp.resolve("cut.png");
        Files.write(cut, Arrays.copyOf(png, png.length / 3));
        assertTrue(assertThrows(BadInputException.class, () -> ImagePreprocessor.decode(cut)).getMessage().contains("cut.png"));
    }

    @Test
    void convertsPaletteGrayAlphaAndSixteenBitLikePil(@TempDir Path tmp) throws Exception {
        // Palette image: indices map through the palette.
        byte[] r = {10, (byte) 200, 0}, g = {20, 0, (byte) 255}, b = {30, 100, 7};
        BufferedImage pal = new BufferedImage(3, 2, BufferedImage.TYPE_BYTE_INDEXED, new IndexColorModel(2, 3, r, g, b));
        int[] idx = {0, 1, 2, 2, 1, 0};
        pal.getRaster().setSamples(0, 0, 3, 2, 0, idx);
        Path p = tmp.resolve("pal.png");
        ImageIO.write(pal, "png", p.toFile());
        ImagePreprocessor.RgbImage d = ImagePreprocessor.decode(p);
        for (int i = 0; i < 6; i++) {
            assertEquals(r[idx[i]], d.rgb()[3 * i]);
            assertEquals(g[idx[i]], d.rgb()[3 * i + 1]);
            assertEquals(b[idx[i]], d.rgb()[3 * i + 2]);
        }
        // 16-bit gray: high byte, replicated to three channels.
        BufferedImage g16 = new BufferedImage(2, 1, BufferedImage.TYPE_USHORT_GRAY);
        g16.getRaster().setSamples(0, 0, 2, 1, 0, new int[]{0x1234, 0xFF01});
        Path q = tmp.resolve("g16.png");
        ImageIO.write(g16, "png", q.toFile());
        ImagePreprocessor.RgbImage e = ImagePreprocessor.decode(q);
        assertArrayEquals(new byte[]{0x12, 0x12, 0x12, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF}, e.rgb());
        // RGBA: alpha dropped, colour kept even where fully transparent (no compositing).
        BufferedImage rgba = new BufferedImage(1, 1, BufferedImage.TYPE_4BYTE_ABGR);
        rgba.getRaster().setPixel(0, 0, new int[]{40, 50, 60, 0});
        Path a = tmp.resolve("rgba.png");
        ImageIO.write(rgba, "png", a.toFile());
        assertArrayEquals(new byte[]{40, 50, 60}, ImagePreprocessor.decode(a).rgb());
    }

    @Test
    void resizeKeepsConstantImagesConstantAndCropIsCentered() {
        // A constant image stays constant under any resampling (coefficients sum to one in fixed point).
        for (int[] sz : new int[][]{{17, 5, 7, 33}, {100, 37, 13, 9}, {1, 1, 5, 3}}) {
            byte[] px = new byte[3 * sz[0] * sz[1]];
            Arrays.fill(px, (byte) 173);
            ImagePreprocessor.RgbImage out = ImagePreprocessor.resize(new ImagePreprocessor.RgbImage(sz[0], sz[1], px),
                    sz[2], sz[3], ImagePreprocessor.BICUBIC);
            assertEquals(sz[2], out.width());
            assertEquals(sz[3], out.height());
            for (byte v : out.rgb()) assertEquals((byte) 173, v);
        }
        // Crop 2x2 out of 5x4: top = 1, left = 1.
        byte[] px = new byte[3 * 5 * 4];
        for (int i = 0; i < 20; i++) px[3 * i] = (byte) i;
        ImagePreprocessor.RgbImage c = ImagePreprocessor.centerCrop(new ImagePreprocessor.RgbImage(5, 4, px), 2, 2);
        assertEquals(6, c.rgb()[0]);
        assertEquals(7, c.rgb()[3]);
        assertEquals(11, c.rgb()[6]);
        assertEquals(12, c.rgb()[9]);
    }

    @Test
    void loadsModelPreprocessorConfig() {
        Path cfg = shared().resolve("models/tiny-llava/model/preprocessor_config.json");
        ImagePreprocessor pp = ImagePreprocessor.load(cfg);
        assertEquals(64, pp.height());
        assertEquals(64, pp.width());
        // README: for 64x64 inputs pixel = (byte/255 - mean) / std; first pixel of the debug checksum.
        float[] x = pp.process(shared().resolve("models/tiny-llava/data/dev/images/img_000001.png"));
        assertEquals(3 * 64 * 64, x.length);
        assertEquals(-0.7265773415565491, x[0], 1e-7);
        double sum = 0;
        for (float v : x) sum += v;
        assertEquals(-2548.425537109375, sum, 1e-2);
    }
}
