package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Image preprocessing compatible with Hugging Face's CLIPImageProcessor (preprocessor_config.json):
 * decode, convert to RGB, resize the shortest edge with PIL's resampling, center crop, rescale,
 * normalise, channels first.
 *
 * <p>Each step reproduces what transformers + Pillow do, so the pixels agree with the Python
 * reference to float32 rounding, not just approximately:
 * <ul>
 *   <li>RGB conversion as PIL's {@code convert("RGB")}: grayscale is replicated, alpha is dropped
 *       (no compositing), palettes are looked up; 16-bit samples keep their high byte.</li>
 *   <li>Resize: the shorter side becomes {@code shortest_edge}, the longer {@code int(S * long / short)};
 *       PIL's separable two-pass resampler (horizontal pass first) with its support scaling when
 *       downscaling (antialiasing), coefficients in 22-bit fixed point, each pass rounded and
 *       clipped to 8 bits, exactly as Pillow's Resample.c does for 8-bit images.</li>
 *   <li>Center crop at top = (h - H) / 2, left = (w - W) / 2 (padding with zeros if the image is smaller).</li>
 *   <li>{@code (float)(v * rescale_factor)} in double then {@code (x - mean) / std} in float32, like
 *       transformers' rescale (float64 -> float32) and normalize (float32).</li>
 * </ul>
 */
public final class ImagePreprocessor {
    /** PIL resampling filters by their enum value (resample in preprocessor_config.json). */
    public static final int NEAREST = 0, BILINEAR = 2, BICUBIC = 3;

    private static final ObjectMapper JSON = new ObjectMapper();

    private static final java.util.Set<String> SUPPORTED_TYPES = java.util.Set.of("CLIPImageProcessor", "CLIPImageProcessorFast",
            "LlavaNextImageProcessor", "LlavaNextImageProcessorFast", "LlavaNextVideoImageProcessor", "LlavaNextVideoProcessor",
            "LlavaNextVideoVideoProcessor");

    private final int shortestEdge;
    private final int cropHeight, cropWidth;
    private final boolean doResize, doCenterCrop, doRescale, doNormalize;
    private final double rescaleFactor;
    private final float[] mean, std;
    private final int resample;

    /**
     * @param shortestEdge target length of the shorter side (used when doResize)
     * @param cropHeight   output height (the crop size; the resized size when !doCenterCrop must equal it)
     * @param cropWidth    output width
     * @param resample     PIL filter: {@link #NEAREST}, {@link #BILINEAR} or {@link #BICUBIC}
     */
    public ImagePreprocessor(int shortestEdge, int cropHeight, int cropWidth, boolean doResize, boolean doCenterCrop,
                             boolean doRescale, double rescaleFactor, boolean doNormalize, float[] mean, float[] std,
                             int resample) {
        if (cropHeight <= 0 || cropWidth <= 0 || (doResize && shortestEdge <= 0))
            throw new IllegalArgumentException("image sizes must be positive");
        if (mean.length != 3 || std.length != 3) throw new IllegalArgumentException("mean and std need 3 channels");
        if (resample != NEAREST && resample != BILINEAR && resample != BICUBIC)
            throw new IllegalArgumentException("unsupported resample filter " + resample);
        this.shortestEdge = shortestEdge;
        this.cropHeight = cropHeight;
        this.cropWidth = cropWidth;
        this.doResize = doResize;
        this.doCenterCrop = doCenterCrop;
        this.doRescale = doRescale;
        this.rescaleFactor = rescaleFactor;
        this.doNormalize = doNormalize;
        this.mean = mean.clone();
        this.std = std.clone();
        this.resample = resample;
    }

    /** CLIP's defaults (OpenAI CLIP mean/std, bicubic) for a square size S. */
    public static ImagePreprocessor clip(int size) {
        return new ImagePreprocessor(size, size, size, true, true, true, 1.0 / 255, true,
                new float[]{0.48145466f, 0.4578275f, 0.40821073f}, new float[]{0.26862954f, 0.26130258f, 0.27577711f},
                BICUBIC);
    }

    /** Reads preprocessor_config.json (CLIPImageProcessor keys; missing keys take CLIP's defaults). */
    public static ImagePreprocessor load(Path configFile) {
        if (!Files.isRegularFile(configFile)) throw new BadInputException(configFile + ": no such file (image preprocessor config)");
        JsonNode n;
        try {
            n = JSON.readTree(configFile.toFile());
        } catch (IOException e) {
            throw new BadInputException(configFile + ": not valid JSON: " + e.getMessage());
        }
        if (n == null || !n.isObject()) throw new BadInputException(configFile + ": not a JSON object");
        String type = n.path("image_processor_type").asText(n.path("video_processor_type").asText("CLIPImageProcessor"));
        // LLaVA-NeXT's processors run CLIP's steps on every tile / frame (the anyres tiling is AnyRes).
        if (!SUPPORTED_TYPES.contains(type))
            throw new BadInputException(configFile + ": unsupported image_processor_type '" + type + "' (supported: "
                    + String.join(", ", new java.util.TreeSet<>(SUPPORTED_TYPES)) + ")");
        JsonNode size = n.get("size");
        int shortest;
        if (size == null) shortest = 224;
        else if (size.isInt()) shortest = size.asInt();
        else if (size.has("shortest_edge")) shortest = size.get("shortest_edge").asInt();
        else throw new BadInputException(configFile + ": unsupported \"size\" " + size + " (supported: {\"shortest_edge\": S})");
        int ch, cw;
        JsonNode crop = n.get("crop_size");
        if (crop == null) ch = cw = 224;
        else if (crop.isInt()) ch = cw = crop.asInt();
        else {
            ch = crop.path("height").asInt(-1);
            cw = crop.path("width").asInt(-1);
        }
        boolean doCrop = n.path("do_center_crop").asBoolean(true);
        boolean doResize = n.path("do_resize").asBoolean(true);
        if (!doCrop) ch = cw = shortest; // without a crop the output is only square for square inputs; we require it below
        if (ch <= 0 || cw <= 0 || shortest <= 0) throw new BadInputException(configFile + ": image sizes must be positive");
        for (String key : new String[]{"size", "crop_size"}) {
            JsonNode v = n.get(key);
            if (v != null && !v.isInt() && !v.isObject()) throw new BadInputException(configFile + ": \"" + key + "\" must be a number or an object");
        }
        ImageLimits.check(configFile, "crop_size", cw, ch);
        ImageLimits.check(configFile, "size.shortest_edge", shortest, shortest);
        int resample = n.path("resample").asInt(BICUBIC);
        if (resample != NEAREST && resample != BILINEAR && resample != BICUBIC)
            throw new BadInputException(configFile + ": unsupported resample " + resample + " (supported: 0 nearest, 2 bilinear, 3 bicubic)");
        double rescale = n.path("rescale_factor").asDouble(1.0 / 255);
        if (!(rescale > 0) || Double.isInfinite(rescale))
            throw new BadInputException(configFile + ": \"rescale_factor\" must be a positive number, got " + n.get("rescale_factor"));
        return new ImagePreprocessor(shortest, ch, cw, doResize, doCrop,
                n.path("do_rescale").asBoolean(true), rescale,
                n.path("do_normalize").asBoolean(true),
                triple(configFile, n, "image_mean", new float[]{0.48145466f, 0.4578275f, 0.40821073f}),
                triple(configFile, n, "image_std", new float[]{0.26862954f, 0.26130258f, 0.27577711f}), resample);
    }

    private static float[] triple(Path file, JsonNode n, String key, float[] dflt) {
        JsonNode v = n.get(key);
        if (v == null) return dflt;
        float[] r = new float[3];
        if (v.isNumber()) java.util.Arrays.fill(r, (float) v.asDouble());
        else if (v.isArray() && v.size() == 3 && v.get(0).isNumber() && v.get(1).isNumber() && v.get(2).isNumber())
            for (int i = 0; i < 3; i++) r[i] = (float) v.get(i).asDouble();
        else throw new BadInputException(file + ": \"" + key + "\" must be a number or a list of 3 numbers");
        for (float x : r) {
            if (!Float.isFinite(x) || (key.equals("image_std") && x == 0))
                throw new BadInputException(file + ": \"" + key + "\" must hold finite numbers" + (key.equals("image_std") ? ", none 0" : "")
                        + ", got " + v);
        }
        return r;
    }

    /** Target length of the shorter side when resizing. */
    public int shortestEdge() { return shortestEdge; }

    /** The PIL resampling filter ({@link #NEAREST}, {@link #BILINEAR} or {@link #BICUBIC}). */
    public int resample() { return resample; }

    /** Output height in pixels. */
    public int height() { return cropHeight; }

    /** Output width in pixels. */
    public int width() { return cropWidth; }

    /** Decodes and preprocesses an image file into float[3 * height() * width()], channels first. */
    public float[] process(Path file) {
        RgbImage img = decode(file);
        if (doResize) {
            long[] size = resizedSize(img.width(), img.height());
            ImageLimits.check(file, "resized image", size[0], size[1]);
        }
        if (!doCenterCrop && !doResize && (img.width() != cropWidth || img.height() != cropHeight))
            throw new BadInputException(file + ": image is " + img.width() + "x" + img.height() + ", the model needs "
                    + cropWidth + "x" + cropHeight + " (do_resize and do_center_crop are off)");
        return process(img);
    }

    /** Preprocesses a decoded image into float[3 * height() * width()], channels first. */
    public float[] process(RgbImage img) {
        RgbImage r = img;
        if (doResize) {
            long[] size = resizedSize(img.width(), img.height());
            ImageLimits.check(null, "resized image", size[0], size[1]);
            r = resize(img, (int) size[0], (int) size[1], resample);
        }
        if (doCenterCrop) r = centerCrop(r, cropWidth, cropHeight);
        else if (r.width() != cropWidth || r.height() != cropHeight)
            throw new BadInputException("image resized to " + r.width() + "x" + r.height() + " but the model needs "
                    + cropWidth + "x" + cropHeight + " (do_center_crop is off)");
        return normalize(r);
    }

    /** transformers' get_resize_output_image_size(default_to_square=False): the short side S, the long int(S * long / short). */
    private long[] resizedSize(int w, int h) {
        return w <= h ? new long[]{shortestEdge, (long) shortestEdge * h / w} : new long[]{(long) shortestEdge * w / h, shortestEdge};
    }

    private float[] normalize(RgbImage img) {
        int hw = img.width() * img.height();
        float[] out = new float[3 * hw];
        byte[] p = img.rgb();
        // 256 possible values per channel: a table keeps this exact and cheap.
        float[][] lut = new float[3][256];
        for (int c = 0; c < 3; c++) {
            for (int v = 0; v < 256; v++) {
                float x = doRescale ? (float) (v * rescaleFactor) : v;
                lut[c][v] = doNormalize ? (x - mean[c]) / std[c] : x;
            }
        }
        for (int i = 0; i < hw; i++) {
            out[i] = lut[0][p[3 * i] & 0xff];
            out[hw + i] = lut[1][p[3 * i + 1] & 0xff];
            out[2 * hw + i] = lut[2][p[3 * i + 2] & 0xff];
        }
        return out;
    }

    /** Center crop as transformers' center_crop: top = (h - H) / 2, left = (w - W) / 2; zero padding if smaller. */
    public static RgbImage centerCrop(RgbImage img, int cw, int ch) {
        int w = img.width(), h = img.height();
        if (w == cw && h == ch) return img;
        byte[] out = new byte[3 * cw * ch];
        // floor division handles the padding case (negative offsets) the way transformers does.
        int top = Math.floorDiv(h - ch, 2), left = Math.floorDiv(w - cw, 2);
        byte[] in = img.rgb();
        for (int y = 0; y < ch; y++) {
            int sy = y + top;
            if (sy < 0 || sy >= h) continue;
            for (int x = 0; x < cw; x++) {
                int sx = x + left;
                if (sx < 0 || sx >= w) continue;
                System.arraycopy(in, 3 * (sy * w + sx), out, 3 * (y * cw + x), 3);
            }
        }
        return new RgbImage(cw, ch, out);
    }

    // ---------------------------------------------------------------- decoding

    /**
     * Decodes a PNG or JPEG (any format javax.imageio reads) into 8-bit RGB, as PIL's
     * {@code Image.open(f).convert("RGB")} would. Unreadable, truncated or corrupt files are a
     * {@link BadInputException} naming the file.
     */
    public static RgbImage decode(Path file) {
        if (!Files.isRegularFile(file)) throw new BadInputException(file + ": no such image file");
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new BadInputException(file + ": cannot read image: " + e.getMessage());
        }
        // A JPEG must end with the EOI marker; libjpeg otherwise pads the missing data with gray
        // and only warns, which would silently feed the model half an image.
        boolean jpeg = bytes.length >= 2 && (bytes[0] & 0xff) == 0xFF && (bytes[1] & 0xff) == 0xD8;
        if (jpeg && !endsWithEoi(bytes))
            throw new BadInputException(file + ": truncated JPEG (no end-of-image marker)");
        BufferedImage img;
        List<String> warnings = new ArrayList<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(new java.io.ByteArrayInputStream(bytes))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new BadInputException(file + ": not an image in a supported format (PNG, JPEG, BMP, GIF)");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                ImageLimits.check(file, "image", reader.getWidth(0), reader.getHeight(0)); // header only: nothing decoded yet
                reader.addIIOReadWarningListener(new IIOReadWarningListener() {
                    @Override
                    public void warningOccurred(ImageReader source, String warning) {
                        warnings.add(warning);
                    }
                });
                img = reader.read(0);
            } finally {
                reader.dispose();
            }
        } catch (BadInputException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new BadInputException(file + ": cannot decode image: " + e.getMessage());
        }
        if (img == null) throw new BadInputException(file + ": cannot decode image");
        // Decoders report damaged data (premature end, corrupt segments) as warnings, not errors.
        for (String w : warnings) {
            String lw = w.toLowerCase(java.util.Locale.ROOT);
            if (lw.contains("premature") || lw.contains("corrupt") || lw.contains("truncat") || lw.contains("invalid"))
                throw new BadInputException(file + ": damaged image data: " + w);
        }
        try {
            return toRgb(img);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(file + ": " + e.getMessage());
        }
    }

    private static boolean endsWithEoi(byte[] b) {
        // Some writers append padding after EOI; accept trailing zero bytes / whitespace.
        int end = b.length;
        while (end > 2 && (b[end - 1] == 0 || b[end - 1] == '\n' || b[end - 1] == '\r' || b[end - 1] == ' ')) end--;
        return end >= 4 && (b[end - 2] & 0xff) == 0xFF && (b[end - 1] & 0xff) == 0xD9;
    }

    /** The decoded raster's samples as 8-bit RGB, with no colour management (PIL applies none). */
    static RgbImage toRgb(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        Raster r = img.getRaster();
        ColorModel cm = img.getColorModel();
        byte[] out = new byte[3 * w * h];
        if (cm instanceof IndexColorModel icm) {
            int[] idx = r.getSamples(0, 0, w, h, 0, (int[]) null);
            for (int i = 0; i < idx.length; i++) {
                int k = idx[i];
                out[3 * i] = (byte) icm.getRed(k);
                out[3 * i + 1] = (byte) icm.getGreen(k);
                out[3 * i + 2] = (byte) icm.getBlue(k);
            }
            return new RgbImage(w, h, out);
        }
        int bands = r.getNumBands();
        int colorBands = cm.getNumColorComponents();
        if (colorBands != 1 && colorBands != 3)
            throw new IllegalArgumentException("unsupported colour layout (" + colorBands + " colour channels, e.g. CMYK)");
        int[] bits = cm.getComponentSize();
        int[] ch = colorBands == 1 ? new int[]{0, 0, 0} : new int[]{0, 1, 2};
        int[] buf = null;
        for (int c = 0; c < 3; c++) {
            if (ch[c] >= bands) throw new IllegalArgumentException("unsupported raster with " + bands + " bands");
            buf = r.getSamples(0, 0, w, h, ch[c], buf);
            int shift = Math.max(0, bits[ch[c]] - 8); // 16-bit PNG: keep the high byte, like PIL's RGB;16B
            for (int i = 0; i < buf.length; i++) out[3 * i + c] = (byte) (buf[i] >>> shift);
        }
        return new RgbImage(w, h, out);
    }

    // ---------------------------------------------------------------- PIL resampling

    /** Pillow's PRECISION_BITS for 8-bit resampling: 32 - 8 - 2. */
    private static final int PRECISION_BITS = 22;

    /**
     * Resizes as Pillow's {@code Image.resize((w, h), resample)} on an RGB image: separable, the
     * horizontal pass first (only over the rows the vertical pass needs), both passes rounded to
     * 8 bits. {@link #NEAREST} uses Pillow's nearest-neighbour pixel centres.
     */
    public static RgbImage resize(RgbImage img, int outW, int outH, int filter) {
        int inW = img.width(), inH = img.height();
        if (outW == inW && outH == inH) return img;
        if (filter == NEAREST) return resizeNearest(img, outW, outH);
        boolean needH = outW != inW, needV = outH != inH;
        Coeffs horiz = coeffs(inW, outW, filter);
        Coeffs vert = coeffs(inH, outH, filter);
        RgbImage cur = img;
        if (needH) {
            int first = vert.bounds[0];
            int last = vert.bounds[2 * (outH - 1)] + vert.bounds[2 * (outH - 1) + 1];
            if (!needV) { first = 0; last = inH; }
            cur = horizontalPass(img, first, last - first, horiz);
            if (needV) for (int i = 0; i < outH; i++) vert.bounds[2 * i] -= first;
        }
        if (needV) cur = verticalPass(cur, outH, vert);
        return cur;
    }

    private record Coeffs(int ksize, int[] bounds, int[] k) {}

    private static double filter(int f, double x) {
        if (x < 0) x = -x;
        if (f == BILINEAR) return x < 1.0 ? 1.0 - x : 0.0;
        final double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize). */
    private static Coeffs coeffs(int inSize, int outSize, int f) {
        double support0 = f == BILINEAR ? 1.0 : 2.0;
        double scale = (double) inSize / outSize;
        double filterscale = Math.max(scale, 1.0);
        double support = support0 * filterscale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[2 * outSize];
        int[] kk = new int[outSize * ksize];
        double[] k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ww = 0.0;
            double ss = 1.0 / filterscale;
            int xmin = (int) (center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int) (center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            for (int x = 0; x < xmax; x++) {
                double wgt = filter(f, (x + xmin - center + 0.5) * ss);
                k[x] = wgt;
                ww += wgt;
            }
            for (int x = 0; x < xmax; x++) {
                double v = ww != 0.0 ? k[x] / ww : k[x];
                kk[xx * ksize + x] = v < 0 ? (int) (-0.5 + v * (1 << PRECISION_BITS)) : (int) (0.5 + v * (1 << PRECISION_BITS));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return new Coeffs(ksize, bounds, kk);
    }

    private static int clip8(int v) {
        if (v >= (1 << PRECISION_BITS << 8)) return 255;
        if (v <= 0) return 0;
        return v >> PRECISION_BITS;
    }

    private static RgbImage horizontalPass(RgbImage img, int y0, int rows, Coeffs c) {
        int inW = img.width(), outW = c.bounds.length / 2;
        byte[] in = img.rgb();
        byte[] out = new byte[3 * outW * rows];
        for (int y = 0; y < rows; y++) {
            int rowIn = 3 * (y + y0) * inW, rowOut = 3 * y * outW;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1], kb = xx * c.ksize;
                int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < xmax; x++) {
                    int kv = c.k[kb + x], p = rowIn + 3 * (x + xmin);
                    s0 += (in[p] & 0xff) * kv;
                    s1 += (in[p + 1] & 0xff) * kv;
                    s2 += (in[p + 2] & 0xff) * kv;
                }
                out[rowOut + 3 * xx] = (byte) clip8(s0);
                out[rowOut + 3 * xx + 1] = (byte) clip8(s1);
                out[rowOut + 3 * xx + 2] = (byte) clip8(s2);
            }
        }
        return new RgbImage(outW, rows, out);
    }

    private static RgbImage verticalPass(RgbImage img, int outH, Coeffs c) {
        int w = img.width();
        byte[] in = img.rgb();
        byte[] out = new byte[3 * w * outH];
        for (int yy = 0; yy < outH; yy++) {
            int ymin = c.bounds[2 * yy], ymax = c.bounds[2 * yy + 1], kb = yy * c.ksize;
            for (int x = 0; x < w; x++) {
                int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int y = 0; y < ymax; y++) {
                    int kv = c.k[kb + y], p = 3 * ((y + ymin) * w + x);
                    s0 += (in[p] & 0xff) * kv;
                    s1 += (in[p + 1] & 0xff) * kv;
                    s2 += (in[p + 2] & 0xff) * kv;
                }
                int o = 3 * (yy * w + x);
                out[o] = (byte) clip8(s0);
                out[o + 1] = (byte) clip8(s1);
                out[o + 2] = (byte) clip8(s2);
            }
        }
        return new RgbImage(w, outH, out);
    }

    /** Pillow's nearest-neighbour resize: source index floor((x + 0.5) * in / out). */
    private static RgbImage resizeNearest(RgbImage img, int outW, int outH) {
        int inW = img.width(), inH = img.height();
        byte[] in = img.rgb(), out = new byte[3 * outW * outH];
        for (int y = 0; y < outH; y++) {
            int sy = Math.min(inH - 1, (int) ((y + 0.5) * inH / outH));
            for (int x = 0; x < outW; x++) {
                int sx = Math.min(inW - 1, (int) ((x + 0.5) * inW / outW));
                System.arraycopy(in, 3 * (sy * inW + sx), out, 3 * (y * outW + x), 3);
            }
        }
        return new RgbImage(outW, outH, out);
    }

    /** An 8-bit RGB image, pixels row-major and interleaved (r, g, b). */
    public record RgbImage(int width, int height, byte[] rgb) {
        public RgbImage {
            if (width <= 0 || height <= 0 || rgb.length != 3 * width * height)
                throw new IllegalArgumentException("RGB buffer of " + rgb.length + " bytes for " + width + "x" + height);
        }
    }
}
