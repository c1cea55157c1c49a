package casp.io;

import org.jcodec.codecs.h264.H264Decoder;
import org.jcodec.codecs.h264.H264Utils;
import org.jcodec.codecs.h264.io.model.SeqParameterSet;
import org.jcodec.common.SeekableDemuxerTrack;
import org.jcodec.common.io.FileChannelWrapper;
import org.jcodec.common.model.ColorSpace;
import org.jcodec.common.model.Picture;
import org.jcodec.codecs.h264.mp4.AvcCBox;
import org.jcodec.containers.mp4.boxes.Box;
import org.jcodec.containers.mp4.boxes.CompositionOffsetsBox;
import org.jcodec.containers.mp4.boxes.Edit;
import org.jcodec.containers.mp4.boxes.EditListBox;
import org.jcodec.containers.mp4.boxes.NodeBox;
import org.jcodec.containers.mp4.boxes.SampleEntry;
import org.jcodec.containers.mp4.boxes.SyncSamplesBox;
import org.jcodec.containers.mp4.boxes.TimeToSampleBox;
import org.jcodec.containers.mp4.boxes.TrackHeaderBox;
import org.jcodec.containers.mp4.boxes.TrakBox;
import org.jcodec.containers.mp4.boxes.VideoSampleEntry;
import org.jcodec.containers.mp4.demuxer.AbstractMP4DemuxerTrack;
import org.jcodec.containers.mp4.demuxer.MP4Demuxer;
import org.jcodec.containers.mp4.demuxer.MP4DemuxerTrack;
import org.jcodec.scale.ColorUtil;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;

/**
 * H.264 video in an MP4 / QuickTime file, decoded in pure Java by jcodec 0.2.5 (8-bit 4:2:0
 * progressive Baseline, Main and High profile: CAVLC and CABAC, 8x8 transforms, B-frames, several
 * slices). What jcodec's own frame grabber leaves out is done here:
 * <ul>
 *   <li>frames in presentation order (by composition time), not decoding order, so B-frames land
 *       where they are shown;</li>
 *   <li>the edit list: frames outside it are not shown (ffmpeg, and so PyAV, drop them too);</li>
 *   <li>the first video track is read, whatever tracks (audio, timecode) come before it;</li>
 *   <li>the track's rotation (tkhd matrix, 90 / 180 / 270 degrees) is applied, as players show it;</li>
 *   <li>full-range YUV (the SPS's video_full_range_flag) converts as full range;</li>
 *   <li>only the groups of pictures that hold a sampled frame are decoded.</li>
 * </ul>
 * Anything jcodec cannot decode (another codec, High 10 / 4:2:2 / 4:4:4 profiles, interlaced
 * coding) is refused before decoding with one line naming the file and the reason, as are damaged
 * files and sizes over the memory budget ({@link Mp4Boxes} checks the structure first).
 */
final class Mp4Video {
    private Mp4Video() {}

    /** Sees each sampled frame's decoded picture, for tests that compare the planes with another decoder's. */
    interface PictureSink {
        /** position: the frame's place in the sampled list (called once for each place the frame fills). */
        void accept(int position, Picture picture);
    }

    /** n frames sampled uniformly (VideoFrames.sampleIndices) from the shown frames of the file. */
    static List<ImagePreprocessor.RgbImage> read(Path file, int n) {
        List<ImagePreprocessor.RgbImage> out = new ArrayList<>();
        decode(file, n, null, out);
        return out;
    }

    /** Decodes the n sampled frames, handing each picture to sink (when not null) and its RGB to rgb. */
    static void decode(Path file, int n, PictureSink sink, List<ImagePreprocessor.RgbImage> rgb) {
        H264Decoder decoder = null;
        try (FileChannel fc = FileChannel.open(file, StandardOpenOption.READ)) {
            Mp4Boxes.check(file, fc);
            fc.position(0);
            MP4Demuxer demuxer = MP4Demuxer.createRawMP4Demuxer(new FileChannelWrapper(fc));
            MP4DemuxerTrack track = videoTrack(file, demuxer);
            TrakBox trak = track.getBox();
            AvcCBox avcC = avcC(file, track);
            StreamInfo info = null;
            for (ByteBuffer sps : avcC.getSpsList()) info = checkSps(file, sps, n);
            if (info == null) throw bad(file, "the avcC box has no sequence parameter set");

            Timeline t = Timeline.of(file, trak, demuxer.getMovie().getTimescale(), (int) track.getFrameCount());
            int[] wanted = new int[n];
            int[] idx = VideoFrames.sampleIndices(t.shown.length, n);
            for (int i = 0; i < n; i++) wanted[i] = t.shown[idx[i]];

            decoder = H264Decoder.createH264DecoderFromCodecPrivate(H264Utils.avcCToAnnexB(avcC));
            byte[][] buffer = Picture.create(info.width, info.height, ColorSpace.YUV444).getData();
            int rotation = rotation(trak.getTrackHeader());
            Map<Integer, ImagePreprocessor.RgbImage> decoded = new HashMap<>();
            int[] targets = Arrays.stream(wanted).distinct().sorted().toArray();
            // The decoder has read samples runStart .. next - 1 without a gap, from a sync sample.
            int runStart = -1, next = -1;
            for (int target : targets) {
                if (target < next) continue; // decoded on the way to an earlier target
                int start = t.decodeStart(target);
                if (runStart < 0 || runStart > start || next < start) {
                    track.gotoFrame(start);
                    runStart = next = start;
                }
                for (; next <= target; next++) {
                    List<ByteBuffer> nals = nalUnits(file, track, next, avcC.getNalLengthSize(), t.count, n);
                    Picture pic = decoder.decodeFrameFromNals(nals, buffer);
                    // Skip what is not sampled, and a frame decoded before (after this later jump its
                    // references may be missing, as for an open GOP's leading pictures).
                    if (!isWanted(wanted, next) || decoded.containsKey(next)) continue;
                    if (pic == null) throw bad(file, "frame " + next + " holds no picture");
                    if (sink != null) for (int i = 0; i < n; i++) if (wanted[i] == next) sink.accept(i, pic);
                    decoded.put(next, rotate(toRgb(pic, info.fullRange), rotation));
                }
            }
            for (int s : wanted) rgb.add(decoded.get(s));
        } catch (BadInputException e) {
            throw e;
        } catch (OutOfMemoryError e) {
            // A single allocation a damaged header asks for (jcodec sizes arrays by declared counts).
            throw bad(file, "the video declares more data than the memory budget (" + e.getMessage() + ")");
        } catch (IOException | RuntimeException e) {
            String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw bad(file, "cannot decode the H.264 video: " + msg.lines().findFirst().orElse(msg));
        } finally {
            if (decoder != null) stopSliceThreads(decoder);
        }
    }

    private static boolean isWanted(int[] wanted, int sample) {
        for (int w : wanted) if (w == sample) return true;
        return false;
    }

    // ---------------------------------------------------------------- track and codec

    /** The first video track (PyAV's streams.video[0]); it must hold H.264. */
    private static MP4DemuxerTrack videoTrack(Path file, MP4Demuxer demuxer) {
        List<String> others = new ArrayList<>();
        for (SeekableDemuxerTrack s : demuxer.getTracks()) {
            // jcodec makes PCM audio tracks (a camera's .mov) another kind of track.
            if (!(s instanceof AbstractMP4DemuxerTrack any) || !any.getBox().isVideo()) {
                if (s instanceof AbstractMP4DemuxerTrack any) others.add(any.getBox().getHandlerType());
                continue;
            }
            if (!(s instanceof MP4DemuxerTrack track)) throw bad(file, "the video track cannot be read sample by sample");
            String codec = track.getFourcc();
            if (!"avc1".equals(codec) && !"avc3".equals(codec))
                throw bad(file, "the video track holds '" + codec + "', not H.264 ('avc1'); only H.264 is decoded");
            if (track.getFrameCount() == 0) throw bad(file, "the video track has no frames");
            return track;
        }
        throw bad(file, "no video track (tracks: " + (others.isEmpty() ? "none" : String.join(", ", others)) + ")");
    }

    private static AvcCBox avcC(Path file, MP4DemuxerTrack track) {
        SampleEntry[] entries = track.getSampleEntries();
        if (entries.length == 0 || !(entries[0] instanceof VideoSampleEntry vse)) throw bad(file, "the video track has no sample description");
        AvcCBox avcC = H264Utils.parseAVCC(vse);
        if (avcC == null) throw bad(file, "the H.264 track has no avcC box");
        return avcC;
    }

    /** What decoding needs to know from a sequence parameter set. */
    private record StreamInfo(int width, int height, boolean fullRange) {}

    /**
     * Refuses an SPS jcodec cannot decode, naming the profile, or one whose frames (with n of them
     * kept) do not fit the memory budget. payload: the SPS NAL unit after its header byte.
     */
    static StreamInfo checkSps(Path file, ByteBuffer payload, int n) {
        ByteBuffer b = payload.duplicate();
        if (b.remaining() < 4) throw bad(file, "sequence parameter set of " + b.remaining() + " bytes");
        int profile = b.get(b.position()) & 0xFF;
        if (profile != 66 && profile != 77 && profile != 100)
            throw bad(file, "H.264 " + profileName(profile) + " profile (profile_idc " + profile + ") is not supported: "
                    + "the pure-Java decoder reads 8-bit 4:2:0 progressive Baseline, Main and High profile; "
                    + "re-encode it, e.g. ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4");
        SeqParameterSet sps = H264Utils.readSPS(b);
        String why = null;
        if (sps.chromaFormatIdc != ColorSpace.YUV420J) why = "chroma format " + sps.chromaFormatIdc + " (4:2:0 expected)";
        else if (sps.bitDepthLumaMinus8 != 0 || sps.bitDepthChromaMinus8 != 0)
            why = (sps.bitDepthLumaMinus8 + 8) + "-bit samples (8-bit expected)";
        else if (!sps.frameMbsOnlyFlag) why = "interlaced coding (field or MBAFF pictures)";
        else if (sps.qpprimeYZeroTransformBypassFlag) why = "lossless coding (qpprime_y_zero_transform_bypass)";
        if (why != null) throw bad(file, "H.264 " + profileName(profile) + " profile with " + why + " is not supported by the pure-Java decoder");
        long w = 16L * (sps.picWidthInMbsMinus1 + 1), h = 16L * (sps.picHeightInMapUnitsMinus1 + 1);
        // Besides the kept RGB frames: the decoder's reference pictures (YUV 4:2:0) and working buffers.
        VideoFrames.checkFrameBudget(file, n, w, h, 3L * (sps.numRefFrames + 2) / 2 + 12);
        boolean fullRange = sps.vuiParams != null && sps.vuiParams.videoFullRangeFlag;
        return new StreamInfo((int) w, (int) h, fullRange);
    }

    private static String profileName(int idc) {
        return switch (idc) {
            case 66 -> "Baseline";
            case 77 -> "Main";
            case 88 -> "Extended";
            case 100 -> "High";
            case 110 -> "High 10";
            case 122 -> "High 4:2:2";
            case 244 -> "High 4:4:4 Predictive";
            case 44 -> "CAVLC 4:4:4 Intra";
            case 83, 86 -> "Scalable (SVC)";
            case 118, 128, 134 -> "Multiview (MVC)";
            default -> "unknown";
        };
    }

    /**
     * The NAL units of one sample (length-prefixed in MP4), each bounds-checked; an in-band
     * sequence parameter set is checked like the avcC's.
     */
    private static List<ByteBuffer> nalUnits(Path file, MP4DemuxerTrack track, int sample, int lengthSize, int count, int n)
            throws IOException {
        var packet = track.nextFrame();
        if (packet == null || packet.getData() == null)
            throw bad(file, "truncated: frame " + sample + " of " + count + " is missing or cut short");
        ByteBuffer data = packet.getData();
        List<ByteBuffer> nals = new ArrayList<>();
        while (data.remaining() >= lengthSize) {
            long len = 0;
            for (int i = 0; i < lengthSize; i++) len = (len << 8) | (data.get() & 0xFF);
            if (len == 0) continue;
            if (len > data.remaining())
                throw bad(file, "frame " + sample + ": a NAL unit declares " + len + " bytes, " + data.remaining() + " are left");
            ByteBuffer nal = data.slice();
            nal.limit((int) len);
            data.position(data.position() + (int) len);
            if ((nal.get(0) & 0x1F) == 7) checkSps(file, nal.duplicate().position(1), n);
            nals.add(nal);
        }
        return nals;
    }

    /** jcodec's decoder starts a thread pool for several-slice pictures and never stops it. */
    private static void stopSliceThreads(H264Decoder decoder) {
        try {
            var field = H264Decoder.class.getDeclaredField("tp");
            field.setAccessible(true);
            if (field.get(decoder) instanceof ExecutorService pool) pool.shutdown();
        } catch (ReflectiveOperationException | RuntimeException e) {
            // A jcodec without the field: its idle pool threads are daemons and end with the JVM.
        }
    }

    // ---------------------------------------------------------------- timing

    /** The track's samples: which are shown (edit list) in which order (composition time), and where decoding may start. */
    private record Timeline(int count, long[] cts, int[] sync, int[] shown) {
        static Timeline of(Path file, TrakBox trak, long movieTimescale, int count) {
            NodeBox stbl = trak.getMdia().getMinf().getStbl();
            long[] cts = new long[count];
            TimeToSampleBox stts = NodeBox.findFirst(stbl, TimeToSampleBox.class, "stts");
            int s = 0;
            long dts = 0;
            if (stts != null) {
                for (TimeToSampleBox.TimeToSampleEntry e : stts.getEntries()) {
                    for (long k = 0; k < (e.getSampleCount() & 0xFFFFFFFFL) && s < count; k++, s++) {
                        cts[s] = dts;
                        dts += e.getSampleDuration();
                    }
                }
            }
            if (s < count) throw bad(file, "the time-to-sample table (stts) covers " + s + " of " + count + " frames");
            CompositionOffsetsBox ctts = NodeBox.findFirst(stbl, CompositionOffsetsBox.class, "ctts");
            if (ctts != null) {
                s = 0;
                for (CompositionOffsetsBox.Entry e : ctts.getEntries())
                    for (long k = 0; k < (e.getCount() & 0xFFFFFFFFL) && s < count; k++) cts[s++] += e.getOffset();
            }
            SyncSamplesBox stss = NodeBox.findFirstPath(trak, SyncSamplesBox.class, Box.path("mdia.minf.stbl.stss"));
            int[] sync;
            if (stss == null) {
                sync = null; // every sample is a sync sample
            } else {
                sync = Arrays.stream(stss.getSyncSamples()).map(x -> x - 1).filter(x -> x >= 0 && x < count).sorted().toArray();
                if (sync.length == 0) throw bad(file, "the sync sample table (stss) lists no key frame");
            }
            int[] shown = shown(trak, movieTimescale, cts);
            if (shown.length == 0) throw bad(file, "no frame of the video track lies inside its edit list");
            return new Timeline(count, cts, sync, shown);
        }

        /** Samples in presentation order, those the edit list shows (all without one). */
        private static int[] shown(TrakBox trak, long movieTimescale, long[] cts) {
            Integer[] order = new Integer[cts.length];
            for (int i = 0; i < order.length; i++) order[i] = i;
            Arrays.sort(order, (a, b) -> cts[a] != cts[b] ? Long.compare(cts[a], cts[b]) : Integer.compare(a, b));
            EditListBox elst = NodeBox.findFirstPath(trak, EditListBox.class, Box.path("edts.elst"));
            // jcodec reads only version-0 edit lists; a version-1 one is ignored (all frames shown).
            if (elst == null || elst.getVersion() != 0 || elst.getEdits().isEmpty())
                return Arrays.stream(order).mapToInt(Integer::intValue).toArray();
            long mediaTimescale = trak.getTimescale();
            List<Integer> out = new ArrayList<>();
            for (Edit e : elst.getEdits()) {
                if (e.getMediaTime() < 0) continue; // an empty edit: a delay, no frames
                long from = e.getMediaTime();
                long to = e.getDuration() <= 0 || movieTimescale <= 0 ? Long.MAX_VALUE
                        : from + e.getDuration() * mediaTimescale / movieTimescale;
                for (Integer i : order) if (cts[i] >= from && cts[i] < to) out.add(i);
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        }

        /**
         * The sync sample decoding starts from to reach sample s: the last at or before it, or the one
         * before that when s is shown before its sync sample (a leading picture of an open GOP, which
         * refers to the previous group).
         */
        int decodeStart(int s) {
            if (sync == null) return s;
            int k = -1;
            for (int i = 0; i < sync.length && sync[i] <= s; i++) k = i;
            if (k < 0) return 0;
            if (k > 0 && cts[s] < cts[sync[k]]) k--;
            return sync[k];
        }
    }

    /** Clockwise rotation in degrees that the track's matrix asks players to apply. */
    private static int rotation(TrackHeaderBox tkhd) {
        if (tkhd == null) return 0;
        if (tkhd.isOrientation90()) return 90;
        if (tkhd.isOrientation180()) return 180;
        if (tkhd.isOrientation270()) return 270;
        return 0;
    }

    // ---------------------------------------------------------------- pixels

    /**
     * A decoded 4:2:0 picture as 8-bit RGB, cropped to its display window: BT.601 as swscale converts
     * by default (and so PyAV's to_ndarray), limited range unless the stream says full range.
     */
    static ImagePreprocessor.RgbImage toRgb(Picture pic, boolean fullRange) {
        ColorSpace space = fullRange ? ColorSpace.YUV420J : ColorSpace.YUV420;
        Picture yuv = Picture.createPicture(pic.getWidth(), pic.getHeight(), pic.getData(), space);
        Picture rgb = Picture.create(pic.getWidth(), pic.getHeight(), ColorSpace.RGB);
        ColorUtil.getTransform(space, ColorSpace.RGB).transform(yuv, rgb);
        int w = pic.getWidth(), x0 = 0, y0 = 0, cw = pic.getCroppedWidth(), ch = pic.getCroppedHeight();
        if (pic.getCrop() != null) {
            x0 = pic.getCrop().getX();
            y0 = pic.getCrop().getY();
        }
        byte[] src = rgb.getPlaneData(0);
        byte[] out = new byte[3 * cw * ch];
        // jcodec stores samples as value - 128 in signed bytes.
        for (int y = 0; y < ch; y++) {
            int s = 3 * ((y + y0) * w + x0), d = 3 * y * cw;
            for (int i = 0; i < 3 * cw; i++) out[d + i] = (byte) (src[s + i] + 128);
        }
        return new ImagePreprocessor.RgbImage(cw, ch, out);
    }

    /** img turned clockwise by degrees (0, 90, 180 or 270). */
    static ImagePreprocessor.RgbImage rotate(ImagePreprocessor.RgbImage img, int degrees) {
        if (degrees == 0) return img;
        int w = img.width(), h = img.height();
        boolean swap = degrees != 180;
        int ow = swap ? h : w, oh = swap ? w : h;
        byte[] src = img.rgb(), dst = new byte[src.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int ox, oy;
                switch (degrees) {
                    case 90 -> { ox = h - 1 - y; oy = x; }
                    case 180 -> { ox = w - 1 - x; oy = h - 1 - y; }
                    default -> { ox = y; oy = w - 1 - x; }
                }
                System.arraycopy(src, 3 * (y * w + x), dst, 3 * (oy * ow + ox), 3);
            }
        }
        return new ImagePreprocessor.RgbImage(ow, oh, dst);
    }

    private static BadInputException bad(Path file, String why) {
        return new BadInputException(file + ": " + why);
    }
}
