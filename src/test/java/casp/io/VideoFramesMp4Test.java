package casp.io;

import org.jcodec.codecs.h264.H264Utils;
import org.jcodec.codecs.h264.io.model.SeqParameterSet;
import org.jcodec.common.Codec;
import org.jcodec.common.MuxerTrack;
import org.jcodec.common.VideoCodecMeta;
import org.jcodec.common.io.NIOUtils;
import org.jcodec.common.io.SeekableByteChannel;
import org.jcodec.common.model.ColorSpace;
import org.jcodec.common.model.Packet;
import org.jcodec.common.model.Picture;
import org.jcodec.common.model.Size;
import org.jcodec.containers.mp4.muxer.MP4Muxer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * MP4 decoding against ffmpeg's decodes of the same files (src/test/resources/casp/io/video, made
 * by make-clips.sh there): 8-bit H.264 Baseline / Main / High clips with B-frames, open GOPs,
 * several slices, an audio track first, an edit list, a variable frame rate and full-range YUV; the
 * profiles jcodec cannot decode, and damaged or hostile files, each one line.
 */
class VideoFramesMp4Test {
    @TempDir
    Path tmp;

    static Path clip(String name) {
        try {
            return Path.of(VideoFramesMp4Test.class.getResource("video/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** ffmpeg-framemd5.txt: clip -> the MD5 of each shown frame's yuv420p planes, in presentation order. */
    static Map<String, List<String>> ffmpegFrameMd5() throws IOException {
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(clip("ffmpeg-framemd5.txt"))) {
            String[] f = line.split(" ");
            List<String> sums = out.computeIfAbsent(f[0], k -> new ArrayList<>());
            assertEquals(sums.size(), Integer.parseInt(f[1]), line);
            sums.add(f[2]);
        }
        return out;
    }

    /** MD5 of a picture's cropped Y, U and V planes, laid out as ffmpeg's rawvideo yuv420p. */
    static String planesMd5(Picture pic) {
        try {
            MessageDigest md = MessageDigest.getInstance("MD5");
            int x0 = pic.getCrop() == null ? 0 : pic.getCrop().getX(), y0 = pic.getCrop() == null ? 0 : pic.getCrop().getY();
            int cw = pic.getCroppedWidth(), ch = pic.getCroppedHeight();
            for (int p = 0; p < 3; p++) {
                int shift = p == 0 ? 0 : 1, stride = pic.getPlaneWidth(p);
                byte[] d = pic.getPlaneData(p);
                for (int y = y0 >> shift; y < (y0 + ch + shift) >> shift; y++)
                    for (int x = x0 >> shift; x < (x0 + cw + shift) >> shift; x++) md.update((byte) (d[y * stride + x] + 128));
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Every clip, every number of frames from 1 to its length (so decoding starts at every group of
     * pictures, and at the one before for an open GOP's leading pictures): the sampled frames'
     * planes equal ffmpeg's frames at the sampled positions.
     */
    @Test
    void sampledFramesAreBitExactWithFfmpegInPresentationOrder() throws IOException {
        Map<String, List<String>> reference = ffmpegFrameMd5();
        assertEquals(10, reference.size());
        for (var e : reference.entrySet()) {
            int total = e.getValue().size();
            for (int n = 1; n <= total; n++) {
                String[] got = new String[n];
                List<ImagePreprocessor.RgbImage> rgb = new ArrayList<>();
                Mp4Video.decode(clip(e.getKey()), n, (i, pic) -> got[i] = planesMd5(pic), rgb);
                List<String> want = Arrays.stream(VideoFrames.sampleIndices(total, n)).mapToObj(e.getValue()::get).toList();
                assertEquals(want, Arrays.asList(got), e.getKey() + ", " + n + " frames");
                assertEquals(n, rgb.size(), e.getKey());
                assertEquals(72, rgb.get(0).width(), e.getKey());
                assertEquals(40, rgb.get(0).height(), e.getKey());
            }
        }
        assertEquals(7, reference.get("editlist.mp4").size(), "the edit list shows 7 of the track's 10 frames");
    }

    static double meanAbsError(ImagePreprocessor.RgbImage img, BufferedImage ref) {
        assertEquals(ref.getWidth(), img.width());
        assertEquals(ref.getHeight(), img.height());
        double sum = 0;
        byte[] p = img.rgb();
        for (int y = 0; y < ref.getHeight(); y++) {
            for (int x = 0; x < ref.getWidth(); x++) {
                int c = ref.getRGB(x, y), o = 3 * (y * ref.getWidth() + x);
                sum += Math.abs(((c >> 16) & 255) - (p[o] & 255)) + Math.abs(((c >> 8) & 255) - (p[o + 1] & 255))
                        + Math.abs((c & 255) - (p[o + 2] & 255));
            }
        }
        return sum / (3.0 * ref.getWidth() * ref.getHeight());
    }

    @Test
    void rgbIsCloseToFfmpegsConversion() throws IOException {
        // Same YUV (bit-exact above); swscale upsamples chroma with a filter where jcodec repeats
        // samples, and rounds differently: about one level on average. Treating the full-range clip
        // as limited range (as before the SPS flag was read) gives 4.6.
        for (String name : List.of("high-bframes", "fullrange")) {
            ImagePreprocessor.RgbImage frame3 = VideoFrames.read(clip(name + ".mp4"), 10).get(3);
            double mae = meanAbsError(frame3, ImageIO.read(clip(name + "-frame3.png").toFile()));
            assertTrue(mae < 1.5, name + ": mean abs error " + mae);
        }
    }

    @Test
    void framesAreSampledUniformlyFromTheShownFrames() {
        List<ImagePreprocessor.RgbImage> all = VideoFrames.read(clip("high-bframes.mp4"), 10);
        List<ImagePreprocessor.RgbImage> four = VideoFrames.read(clip("high-bframes.mp4"), 4);
        int[] idx = {0, 2, 5, 7};
        for (int i = 0; i < 4; i++) assertArrayEquals(all.get(idx[i]).rgb(), four.get(i).rgb(), "sampled frame " + i);
        // The edit list starts at frame 3: its 7 shown frames are frames 3..9 of the track.
        List<ImagePreprocessor.RgbImage> edited = VideoFrames.read(clip("editlist.mp4"), 7);
        for (int i = 0; i < 7; i++) assertArrayEquals(all.get(3 + i).rgb(), edited.get(i).rgb(), "edited frame " + i);
        List<ImagePreprocessor.RgbImage> twelve = VideoFrames.read(clip("high-bframes.mp4"), 12);
        assertArrayEquals(all.get(0).rgb(), twelve.get(1).rgb(), "12 of 10 frames repeat frame 0");
    }

    /** A copy of high-bframes.mp4 whose video track header carries the given matrix (a, b, c, d). */
    Path withMatrix(int a, int b, int c, int d) throws IOException {
        byte[] bytes = Files.readAllBytes(clip("high-bframes.mp4"));
        int tkhd = indexOf(bytes, "tkhd") - 4;
        assertEquals(0, bytes[tkhd + 8], "version-0 tkhd");
        // size, type, version/flags, 5 x 32-bit times and ids, 8 reserved, layer, group, volume, reserved
        ByteBuffer m = ByteBuffer.wrap(bytes, tkhd + 8 + 4 + 20 + 8 + 8, 36);
        for (int v : new int[]{a, b, 0, c, d, 0, 0, 0, 0x40000000}) m.putInt(v);
        return Files.write(tmp.resolve("rotated-" + a + b + c + d + ".mp4"), bytes);
    }

    static int indexOf(byte[] bytes, String fourcc) {
        byte[] f = fourcc.getBytes(StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + 4 <= bytes.length; i++) {
            for (int k = 0; k < 4; k++) if (bytes[i + k] != f[k]) continue outer;
            return i;
        }
        throw new AssertionError("no " + fourcc + " box");
    }

    @Test
    void rotationMetadataTurnsTheFramesAsPlayersShowThem() throws IOException {
        ImagePreprocessor.RgbImage upright = VideoFrames.read(clip("high-bframes.mp4"), 1).get(0);
        int w = upright.width(), h = upright.height();
        // Matrix (0, 1, -1, 0): ffprobe reports rotation -90, players turn the picture 90 degrees clockwise.
        ImagePreprocessor.RgbImage cw = VideoFrames.read(withMatrix(0, 0x10000, -0x10000, 0), 1).get(0);
        ImagePreprocessor.RgbImage half = VideoFrames.read(withMatrix(-0x10000, 0, 0, -0x10000), 1).get(0);
        ImagePreprocessor.RgbImage ccw = VideoFrames.read(withMatrix(0, -0x10000, 0x10000, 0), 1).get(0);
        assertEquals(h, cw.width());
        assertEquals(w, cw.height());
        assertEquals(w, half.width());
        assertEquals(w, ccw.height());
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int c = 0; c < 3; c++) {
                    byte v = upright.rgb()[3 * (y * w + x) + c];
                    assertEquals(v, cw.rgb()[3 * (x * h + (h - 1 - y)) + c], "90 at " + x + "," + y);
                    assertEquals(v, half.rgb()[3 * ((h - 1 - y) * w + (w - 1 - x)) + c], "180 at " + x + "," + y);
                    assertEquals(v, ccw.rgb()[3 * ((w - 1 - x) * h + y) + c], "270 at " + x + "," + y);
                }
            }
        }
    }

    @Test
    void severalSliceClipsLeaveNoDecoderThreadsBehind() throws InterruptedException {
        // jcodec decodes the slices of a picture on a thread pool of its own that it never stops.
        long before = liveThreads();
        for (int i = 0; i < 5; i++) VideoFrames.read(clip("high-slices.mp4"), 4);
        long deadline = System.nanoTime() + 10_000_000_000L; // stopped pools' threads end soon after, not at once
        while (liveThreads() > before && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(liveThreads() <= before, "threads before " + before + ", after " + liveThreads());
    }

    static long liveThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive).count();
    }

    static void assertOneLine(Path file, String mentions, Runnable read) {
        BadInputException e = assertThrows(BadInputException.class, read::run, file.toString());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().contains(mentions), "'" + mentions + "' in: " + e.getMessage());
    }

    @Test
    void whatJcodecCannotDecodeIsOneLineNamingTheReason() {
        Map<String, String> reasons = Map.of("high10.mp4", "High 10 profile", "high444.mp4", "High 4:4:4 Predictive profile",
                "interlaced.mp4", "interlaced", "hevc.mp4", "'hev1', not H.264", "fragmented.mp4", "fragmented MP4");
        reasons.forEach((name, reason) -> assertOneLine(clip(name), reason, () -> VideoFrames.read(clip(name), 4)));
    }

    /** high-bframes.mp4 with the 32-bit field at offset `at` of its first `fourcc` box (from the box start) set to value. */
    Path patched(String fourcc, int at, int value) throws IOException {
        byte[] bytes = Files.readAllBytes(clip("high-bframes.mp4"));
        ByteBuffer.wrap(bytes).putInt(indexOf(bytes, fourcc) - 4 + at, value);
        return Files.write(tmp.resolve(fourcc + at + "-" + value + ".mp4"), bytes);
    }

    @Test
    void damagedAndHostileFilesAreOneLineWithBoundedMemory() throws IOException {
        byte[] good = Files.readAllBytes(clip("high-bframes.mp4"));
        for (double keep : new double[]{0.1, 0.5, 0.99}) {
            Path cut = Files.write(tmp.resolve("cut" + keep + ".mp4"), Arrays.copyOf(good, (int) (good.length * keep)));
            assertOneLine(cut, "truncated", () -> VideoFrames.read(cut, 4));
        }
        Path tiny = Files.write(tmp.resolve("tiny.mp4"), Arrays.copyOf(good, 5));
        assertOneLine(tiny, "truncated", () -> VideoFrames.read(tiny, 4));
        // Sample tables that declare more entries than their bytes hold (2^31 - 1 sizes, offsets).
        Path sizes = patched("stsz", 16, Integer.MAX_VALUE);
        assertOneLine(sizes, "'stsz' declares 2147483647 entries", () -> VideoFrames.read(sizes, 4));
        Path chunks = patched("stco", 12, Integer.MAX_VALUE);
        assertOneLine(chunks, "'stco' declares 2147483647 entries", () -> VideoFrames.read(chunks, 4));
        // A moov box that claims 2 GB.
        Path moov = patched("moov", 0, Integer.MAX_VALUE);
        assertOneLine(moov, "truncated: box 'moov'", () -> VideoFrames.read(moov, 4));
        // A video track with zero frames.
        Path none = patched("stsz", 16, 0);
        assertOneLine(none, "no frames", () -> VideoFrames.read(none, 4));
        // A sample that claims more bytes than the file.
        Path big = patched("stsz", 20, 1 << 30);
        assertOneLine(big, "declares 1073741824 bytes", () -> VideoFrames.read(big, 4));
        // More frames than the memory budget holds.
        assertOneLine(clip("high-bframes.mp4"), "over the budget", () -> VideoFrames.read(clip("high-bframes.mp4"), 5_000_000));
    }

    @Test
    void hugeDeclaredFrameSizeIsRefusedBeforeDecoding() throws IOException {
        // A decompression bomb: a few hundred bytes whose SPS declares 32768 x 32768 pixels.
        byte[] good = Files.readAllBytes(clip("high-bframes.mp4"));
        ByteBuffer avcC = ByteBuffer.wrap(good, indexOf(good, "avcC") + 4, 64).slice();
        int spsLength = avcC.getShort(6) & 0xFFFF;
        ByteBuffer spsNal = avcC.duplicate().position(8).limit(8 + spsLength).slice();
        int ppsLength = avcC.getShort(8 + spsLength + 1) & 0xFFFF;
        ByteBuffer ppsNal = avcC.duplicate().position(8 + spsLength + 3).limit(8 + spsLength + 3 + ppsLength).slice();
        SeqParameterSet sps = H264Utils.readSPS(spsNal.duplicate().position(1));
        sps.picWidthInMbsMinus1 = 2047;
        sps.picHeightInMapUnitsMinus1 = 2047;
        sps.frameCroppingFlag = false;
        ByteBuffer bombSps = H264Utils.writeSPS(sps, 64);

        ByteBuffer frame = ByteBuffer.allocate(256);
        frame.putInt(1).put((byte) 0x67).put(bombSps);
        frame.putInt(1).put(ppsNal);
        frame.putInt(1).put((byte) 0x65).put(new byte[]{(byte) 0x88, (byte) 0x84, 0x00, 0x33, (byte) 0xff});
        frame.flip();
        Path bomb = tmp.resolve("bomb.mp4");
        try (SeekableByteChannel out = NIOUtils.writableChannel(bomb.toFile())) {
            MP4Muxer muxer = MP4Muxer.createMP4MuxerToChannel(out);
            MuxerTrack track = muxer.addVideoTrack(Codec.H264, VideoCodecMeta.createSimpleVideoCodecMeta(new Size(32768, 32768), ColorSpace.YUV420));
            track.addFrame(Packet.createPacket(frame, 0, 25, 1, 0, Packet.FrameType.KEY, null));
            muxer.finish();
        }
        assertTrue(Files.size(bomb) < 2000, "a small file: " + Files.size(bomb));
        assertOneLine(bomb, "video frame of 32768x32768 pixels is over the limit", () -> VideoFrames.read(bomb, 1));
    }
}
