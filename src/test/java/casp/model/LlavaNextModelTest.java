package casp.model;

import casp.io.AnyRes;
import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import casp.io.ModelFolder;
import casp.io.WeightStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static casp.model.LlavaNextFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * llava_next and llava_next_video folders of random weights (both tensor naming schemes, average
 * and max pooling, wide / tall / odd image sizes) against the float64 reference
 * {@link NaiveLlavaNext} + {@link NaiveLlama}: the expanded prompt ids and the logits of every
 * position.
 */
class LlavaNextModelTest {
    @TempDir
    Path tmp;

    static Path frames(Path dir, int n, int width, int height, long seed) throws IOException {
        for (int i = 0; i < n; i++) randomPng(dir.resolve(String.format("frame%02d.png", i)), width, height, seed + i);
        return dir;
    }

    @ParameterizedTest
    @CsvSource({
            "false, false, average, 53, 11",   // wide picture: a row of padding cropped top and bottom
            "false, true,  average, 19, 61",   // tall picture: columns cropped
            "true,  false, average, 37, 29",
            "true,  true,  max,     41, 7"})
    void logitsMatchTheFloat64Reference(boolean video, boolean newNames, String pool, int width, int height) throws IOException {
        Path dir = write(tmp.resolve("m"), video, newNames, pool, 7 + width);
        LlavaModel m = LlavaModel.load(dir);
        assertEquals(video, m.takesVideo());
        Path png = randomPng(tmp.resolve("img.png"), width, height, 3);
        Path clip = video ? frames(tmp.resolve("clip"), 5, 23, 29, 11) : null;
        LlavaModel.Media media = m.encode(png, clip, 0);
        String text = m.render(m.userTurn("what is in it?", true, video), true);
        int[] ids = m.tokenize(text, media);
        float[] got = m.forward(ids, media, true);

        NaiveLlavaNext ref = new NaiveLlavaNext(WeightStore.open(dir), newNames, pool);
        List<double[]> imageRows = ref.image(ImagePreprocessor.decode(png));
        assertEquals(AnyRes.imageTokens(height, width, PINPOINTS, TILE, PATCH), imageRows.size());
        List<double[]> videoRows = new ArrayList<>();
        if (video) {
            List<ImagePreprocessor.RgbImage> sampled = new ArrayList<>();
            for (int i = 0; i < FRAMES; i++) sampled.add(ImagePreprocessor.decode(clip.resolve(String.format("frame%02d.png", i))));
            videoRows = ref.video(sampled); // 5 frames, 4 sampled: floor(i * 5 / 4) = 0, 1, 2, 3
            assertEquals(FRAMES * 4, videoRows.size(), "4 frames of a 5 x 5 grid pooled by 2 -> 2 x 2");
        }
        int[] raw = m.tokenizer().encode(text, true);
        List<Integer> want = new ArrayList<>();
        for (int id : raw) {
            int copies = id == IMAGE_ID ? imageRows.size() : id == VIDEO_ID ? videoRows.size() : 1;
            for (int k = 0; k < copies; k++) want.add(id);
        }
        assertArrayEquals(want.stream().mapToInt(Integer::intValue).toArray(), ids, "expanded prompt ids");

        ModelFolder f = ModelFolder.open(dir);
        NaiveLlama lm = new NaiveLlama(f.config().text(), f.weights(), f.textPrefix(), f.lmHead());
        double[][] emb = lm.mat(f.textPrefix() + "embed_tokens.weight", VOCAB, T_HIDDEN);
        double[][] x = new double[ids.length][];
        int img = 0, vid = 0;
        for (int t = 0; t < ids.length; t++)
            x[t] = (ids[t] == IMAGE_ID ? imageRows.get(img++) : ids[t] == VIDEO_ID ? videoRows.get(vid++) : emb[ids[t]]).clone();
        double[][] expected = lm.forwardEmbeddings(x);
        double maxAbs = 0, err = 0;
        for (int t = 0; t < ids.length; t++)
            for (int i = 0; i < VOCAB; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(expected[t][i]));
                err = Math.max(err, Math.abs(got[t * VOCAB + i] - expected[t][i]));
            }
        assertTrue(err <= 1e-4 * maxAbs, "max logit error " + err + " relative to " + maxAbs + " over " + ids.length + " positions");
    }

    @Test
    void tokenCountsWithoutEncodingEqualTheEncodedOnes() throws IOException {
        Path dir = write(tmp.resolve("v"), true, false, "average", 5);
        LlavaModel m = LlavaModel.load(dir);
        Path png = randomPng(tmp.resolve("wide.png"), 90, 20, 1);
        Path clip = frames(tmp.resolve("clip"), 3, 20, 20, 2);
        var turn = m.userTurn("q", true, true);
        assertArrayEquals(m.promptIds(turn, true, m.encode(png, clip, 0)), m.promptIds(turn, true, png, clip));
        assertEquals(6 * 4, m.encodeVideo(clip, 6).length / T_HIDDEN, "--frames 6 of a 3-frame clip repeats frames");
        assertThrows(IllegalStateException.class, () -> m.tokenize(m.render(turn, true)), "NeXT placeholders need the media");
        BadInputException e = assertThrows(BadInputException.class, () -> m.promptIds(turn, true, LlavaModel.Media.NONE));
        assertTrue(e.getMessage().contains("image placeholder"), e.getMessage());

        LlavaModel imageOnly = LlavaModel.load(write(tmp.resolve("i"), false, true, "average", 6));
        assertFalse(imageOnly.takesVideo());
        assertThrows(BadInputException.class, () -> imageOnly.encodeVideo(clip, 0));
    }
}
