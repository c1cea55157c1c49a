package casp.cli;

import casp.io.AnyRes;
import casp.model.LlavaNextFixture;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * generate --video, eval vqa, compress --method casp and sparsity on a tiny random
 * llava_next_video folder with image, video and text records (plumbing: random weights answer
 * nothing sensible), and the one-line errors for bad video input.
 */
class LlavaNextCommandsTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;
    static Path model, data;

    @BeforeAll
    static void folders() throws IOException {
        model = LlavaNextFixture.write(tmp.resolve("model"), true, false, "average", 3);
        Path media = Files.createDirectories(tmp.resolve("data/media"));
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 5; i++)
                LlavaNextFixture.randomPng(media.resolve("clip" + c + "/f" + i + ".png"), 24, 20, 10 * c + i);
        LlavaNextFixture.randomPng(media.resolve("wide.png"), 50, 18, 1);
        LlavaNextFixture.randomPng(media.resolve("tall.png"), 15, 44, 2);
        ArrayNode recs = JSON.createArrayNode();
        record(recs, "v0", null, "clip0", "<video>\nWhat happens in the clip?", "a red square moves");
        record(recs, "i0", "wide.png", null, "<image>\nWhat is in the picture?", "a blue circle");
        record(recs, "t0", null, null, "Tell me a story.", "once upon a time");
        record(recs, "b0", "tall.png", "clip1", "<image>\n<video>\nDoes the clip show the picture?", "yes");
        data = tmp.resolve("data/conv.json");
        JSON.writeValue(data.toFile(), recs);
    }

    static void record(ArrayNode recs, String id, String image, String video, String question, String answer) {
        ObjectNode r = recs.addObject();
        r.put("id", id);
        if (image != null) r.put("image", image);
        if (video != null) r.put("video", video);
        ArrayNode conv = r.putArray("conversations");
        conv.addObject().put("from", "human").put("value", question);
        conv.addObject().put("from", "gpt").put("value", answer);
    }

    @Test
    void generateWithVideoReportsVisualTokensAndTimes() throws Exception {
        CliRunner.Result r = CliRunner.run("generate", "--model", model.toString(), "--video",
                tmp.resolve("data/media/clip0").toString(), "--frames", "3", "--prompt", "What happens?", "--max-tokens", "3",
                "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = JSON.readTree(r.out());
        assertEquals(3 * 4, j.get("visual_tokens").asInt(), "3 frames x 2 x 2 pooled tokens");
        assertTrue(j.get("vision_tower_s").asDouble() > 0);
        assertTrue(j.has("projector_s") && j.has("language_model_s"));
        assertEquals(3, j.get("ids").size());

        // An H.264 High-profile MP4 with B-frames (made by ffmpeg).
        Path mp4 = Path.of(LlavaNextCommandsTest.class.getResource("/casp/io/video/high-bframes.mp4").toURI());
        r = CliRunner.run("generate", "--model", model.toString(), "--video", mp4.toString(), "--frames", "3",
                "--prompt", "What happens?", "--max-tokens", "1", "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(3 * 4, JSON.readTree(r.out()).get("visual_tokens").asInt());

        r = CliRunner.run("generate", "--model", model.toString(), "--image", tmp.resolve("data/media/wide.png").toString(),
                "--video", tmp.resolve("data/media/clip1").toString(), "--prompt", "Same?", "--max-tokens", "2", "--json");
        assertEquals(0, r.exitCode(), r.err());
        // Default frames come from video_preprocessor_config.json (4): 16 video tokens + the 50 x 18 image's.
        assertEquals(4 * 4 + AnyRes.imageTokens(18, 50, LlavaNextFixture.PINPOINTS, 20, 4),
                JSON.readTree(r.out()).get("visual_tokens").asInt());
    }

    @Test
    void inspectShowsTheAnyresGridAndTokensPerFrame() throws Exception {
        CliRunner.Result r = CliRunner.run("inspect", model.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode v = JSON.readTree(r.out()).get("vision_tower");
        assertEquals(25, v.get("image_tokens").asInt(), "per tile: 5 x 5 patches");
        assertEquals(5, v.get("anyres_grid_pinpoints").size());
        assertEquals(4, v.get("video_tokens_per_frame").asInt(), "5 x 5 pooled by 2 -> 2 x 2");
        r = CliRunner.run("inspect", model.toString());
        assertTrue(r.out().contains("25 image tokens per tile; anyres over 5 grid resolutions; 4 tokens per video frame"), r.out());
    }

    @Test
    void badVideoIsOneLineAndExitTwo() throws Exception {
        Path junk = Files.write(tmp.resolve("junk.mp4"), new byte[300]);
        Path high10 = Path.of(LlavaNextCommandsTest.class.getResource("/casp/io/video/high10.mp4").toURI());
        byte[] clip = Files.readAllBytes(Path.of(LlavaNextCommandsTest.class.getResource("/casp/io/video/high-bframes.mp4").toURI()));
        Path cut = Files.write(tmp.resolve("cut.mp4"), java.util.Arrays.copyOf(clip, clip.length / 2));
        for (String[] args : new String[][]{
                {"generate", "--model", model.toString(), "--video", junk.toString(), "--prompt", "x"},
                {"generate", "--model", model.toString(), "--video", high10.toString(), "--prompt", "x"},
                {"generate", "--model", model.toString(), "--video", cut.toString(), "--prompt", "x"},
                {"generate", "--model", model.toString(), "--video", tmp.resolve("nope.gif").toString(), "--prompt", "x"},
                {"generate", "--model", model.toString(), "--video", tmp.resolve("data/media/clip0").toString(), "--frames", "-1"},
                {"generate", "--model", model.toString(), "--image", tmp.resolve("data/media/wide.png").toString(), "--frames", "4"},
                {"generate", "--model", LlavaNextFixture.write(tmp.resolve("img-only"), false, true, "average", 4).toString(),
                        "--video", tmp.resolve("data/media/clip0").toString()}}) {
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(2, r.exitCode(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertFalse(r.err().contains("Exception"), r.err());
        }
    }

    @Test
    void evalVqaOnMixedRecords() throws Exception {
        ArrayNode visual = JSON.createArrayNode();
        for (JsonNode rec : JSON.readTree(data.toFile())) if (!rec.get("id").asText().equals("t0")) visual.add(rec);
        Path vqa = Files.writeString(tmp.resolve("data/vqa.json"), JSON.writeValueAsString(visual));
        CliRunner.Result r = CliRunner.run("eval", "vqa", "--model", model.toString(), "--data", vqa.toString(),
                "--images", tmp.resolve("data/media").toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(3, JSON.readTree(r.out()).get("n").asInt(), r.out());
        // A text-only record has nothing to look at: one line naming it.
        r = CliRunner.run("eval", "vqa", "--model", model.toString(), "--data", data.toString(),
                "--images", tmp.resolve("data/media").toString());
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("t0") && r.err().contains("no image or video"), r.err());
    }

    @Test
    void compressCaspAndSparsityOnVideoCalibration() throws Exception {
        Path out = tmp.resolve("casp2");
        CliRunner.Result r = CliRunner.run("compress", "--model", model.toString(), "--calib", data.toString(),
                "--images", tmp.resolve("data/media").toString(), "--method", "casp", "--bits", "2", "--samples", "4",
                "--seq-len", "16", "--out", out.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        assertTrue(Files.isRegularFile(out.resolve("video_preprocessor_config.json")), "processor configs are copied");
        // --frames 2 instead of the processor config's 4: two video records, 2 x 2 pooled tokens fewer per frame.
        long tokens = JSON.readTree(out.resolve("casp-report.json").toFile()).get("calibration").get("tokens").asLong();
        Path out2 = tmp.resolve("rtn-2frames");
        r = CliRunner.run("compress", "--model", model.toString(), "--calib", data.toString(),
                "--images", tmp.resolve("data/media").toString(), "--method", "rtn", "--bits", "4", "--samples", "4",
                "--seq-len", "16", "--frames", "2", "--out", out2.toString(), "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(tokens - 2 * 2 * 4, JSON.readTree(out2.resolve("casp-report.json").toFile()).get("calibration").get("tokens").asLong());
        CliRunner.Result g = CliRunner.run("generate", "--model", out.toString(), "--video",
                tmp.resolve("data/media/clip0").toString(), "--prompt", "x", "--max-tokens", "2", "--json");
        assertEquals(0, g.exitCode(), g.err());
        assertEquals(16, JSON.readTree(g.out()).get("visual_tokens").asInt());

        CliRunner.Result s = CliRunner.run("sparsity", "--model", model.toString(), "--data", data.toString(),
                "--images", tmp.resolve("data/media").toString(), "--samples", "3", "--text-tokens", "2,40", "--json");
        assertEquals(0, s.exitCode(), s.err());
        JsonNode j = JSON.readTree(s.out());
        assertEquals(6, j.get("inputs").asInt(), "3 visual records x 2 text lengths");
        double vm = j.get("all").get("visual_mass").asDouble();
        assertTrue(vm > 0 && vm < 1, "visual mass " + vm);
        s = CliRunner.run("sparsity", "--model", model.toString(), "--data", data.toString(),
                "--images", tmp.resolve("data/media").toString(), "--samples", "2", "--fixed-length", "120",
                "--images-per-input", "0,1", "--json");
        assertEquals(0, s.exitCode(), s.err());
    }

    /** The mean visual share of a sparsity run's inputs (its bins' shares weighted by their inputs). */
    static double meanVisualShare(CliRunner.Result r) throws IOException {
        assertEquals(0, r.exitCode(), r.err());
        double sum = 0;
        int n = 0;
        for (JsonNode b : JSON.readTree(r.out()).get("visual_share_bins")) {
            if (b.get("inputs").asInt() == 0) continue;
            sum += b.get("inputs").asInt() * b.get("mean_share").asDouble();
            n += b.get("inputs").asInt();
        }
        return sum / n;
    }

    @Test
    void framesOptionReachesEveryCommandThatReadsVideoRecords() throws Exception {
        ArrayNode videos = JSON.createArrayNode();
        for (JsonNode rec : JSON.readTree(data.toFile())) if (rec.get("id").asText().equals("v0")) videos.add(rec);
        Path v = Files.writeString(tmp.resolve("data/video-only.json"), JSON.writeValueAsString(videos));
        String media = tmp.resolve("data/media").toString();
        // sparsity: fewer frames, a smaller visual share of the same input.
        String[] sparsity = {"sparsity", "--model", model.toString(), "--data", v.toString(), "--images", media,
                "--samples", "1", "--text-tokens", "4", "--json"};
        double share4 = meanVisualShare(CliRunner.run(sparsity));
        double share1 = meanVisualShare(CliRunner.run(concat(sparsity, "--frames", "1")));
        assertTrue(share1 < share4, "visual share with 1 frame " + share1 + ", with the default 4 " + share4);
        // eval vqa: other frames, other visual tokens, another answer likelihood.
        String[] vqa = {"eval", "vqa", "--model", model.toString(), "--data", v.toString(), "--images", media,
                "--max-tokens", "1", "--json"};
        CliRunner.Result a = CliRunner.run(vqa), b = CliRunner.run(concat(vqa, "--frames", "1"));
        assertEquals(0, a.exitCode(), a.err());
        assertEquals(0, b.exitCode(), b.err());
        assertNotEquals(JSON.readTree(a.out()).get("answer_nll").asDouble(), JSON.readTree(b.out()).get("answer_nll").asDouble());
        // Misused: one line, exit 2.
        Path imageOnly = LlavaNextFixture.write(tmp.resolve("img-only-frames"), false, true, "average", 4);
        Path text = Files.writeString(tmp.resolve("calib.txt"), "some calibration text ".repeat(50));
        for (String[] args : new String[][]{
                concat(vqa, "--frames", "-2"),
                {"eval", "vqa", "--model", imageOnly.toString(), "--data", v.toString(), "--images", media, "--frames", "2"},
                concat(sparsity, "--frames", "-1"),
                {"compress", "--model", model.toString(), "--calib", text.toString(), "--method", "rtn", "--bits", "4",
                        "--frames", "2", "--out", tmp.resolve("never").toString()}}) {
            CliRunner.Result r = CliRunner.run(args);
            assertEquals(2, r.exitCode(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains("--frames"), r.err());
        }
        assertFalse(Files.exists(tmp.resolve("never")));
    }

    static String[] concat(String[] a, String... more) {
        String[] out = java.util.Arrays.copyOf(a, a.length + more.length);
        System.arraycopy(more, 0, out, a.length, more.length);
        return out;
    }
}
