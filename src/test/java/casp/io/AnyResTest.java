package casp.io;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LLaVA-NeXT's image-token count against the Hugging Face processor's formula
 * (LlavaNextProcessor._get_number_of_features with the default strategy), worked by hand for
 * llava-v1.6's geometry: 336 px tiles of 14 px patches (a 24 x 24 grid, 576 base tokens), grid
 * pinpoints (height, width) 336x672, 672x336, 672x672, 1008x336, 336x1008. Sizes are written
 * height x width, the order transformers uses.
 *
 * <p>The formula: best = the pinpoint maximising min(int(w s) * int(h s), w h) with
 * s = min(W / w, H / h), ties to the least wasted W H - effective; current = (H / 336 * 24,
 * W / 336 * 24); if w / h > cur_w / cur_h the rows shrink to cur_h - 2 * ((cur_h -
 * int(round(h * cur_w / w, 7))) // 2), else the columns likewise; tokens = 576 + rows * (cols + 1).
 */
class AnyResTest {
    static final int[][] PINS = LlavaNextSettings.DEFAULT_PINPOINTS;

    static int tokens(int h, int w) {
        return AnyRes.imageTokens(h, w, PINS, 336, 14);
    }

    @Test
    void imageTokenCountsMatchTheProcessorFormula() {
        // 336x336: every pinpoint keeps all 112896 pixels; 336x672 and 672x336 waste 112896, the
        // first wins the tie -> grid 24 x 48; aspect 1 <= 2, new_w = round(336 * 24 / 336) = 24,
        // padding (48 - 24) // 2 = 12 -> 24 x 24 kept: 576 + 24 * 25 = 1176.
        assertEquals(1176, tokens(336, 336));
        // Tiny (1x1 and 10x10) pick the same pinpoint and keep the same 24 x 24: 1176.
        assertEquals(1176, tokens(1, 1));
        assertEquals(1176, tokens(10, 10));
        // 1000x1000: only 672x672 keeps 451584 pixels -> 48 x 48, square, nothing cropped:
        // 576 + 48 * 49 = 2928.
        assertEquals(2928, tokens(1000, 1000));
        // 336 high x 1008 wide (an image 1008 px wide): 336x1008 fits exactly -> 24 x 72, aspect
        // 3 = 3 so the columns branch: new_w = 72, no padding: 576 + 24 * 73 = 2328.
        assertEquals(2328, tokens(336, 1008));
        // 1008 high x 336 wide: 72 x 24, new_w = 24: 576 + 72 * 25 = 2376.
        assertEquals(2376, tokens(1008, 336));
        // 336x672 (wide 2:1): exact fit 24 x 48, nothing cropped: 576 + 24 * 49 = 1752.
        assertEquals(1752, tokens(336, 672));
        // 480x640 (VGA, wide): 672x672 keeps all 307200 pixels (s = 1.05), the others at most
        // 150528 (s = 0.7) -> 48 x 48; 640/480 > 1:
        // new_h = int(round(480 * 48 / 640, 7)) = 36, padding 6 -> 36 x 48: 576 + 36 * 49 = 2340.
        assertEquals(2340, tokens(480, 640));
        // 400x600 (coffee.png): 672x672 keeps all 240000 pixels (s = 1.12) -> 48 x 48; new_h =
        // int(round(400 * 48 / 600, 7)) = 32, padding 8 -> 32 x 48: 576 + 32 * 49 = 2144.
        assertEquals(2144, tokens(400, 600));
        // 300x451 (chelsea.png): 336x672 and 672x672 keep all pixels, 336x672 wastes less -> 24 x 48;
        // 451/300 < 2: new_w = int(round(451 * 24 / 300, 7)) = 36, padding 6 -> 24 x 36: 576 + 24 * 37 = 1464.
        assertEquals(1464, tokens(300, 451));
        // 640x480 (tall): 48 x 36 after new_w = 36: 576 + 48 * 37 = 2352.
        assertEquals(2352, tokens(640, 480));
        // 720x1280 and 1080x1920 (16:9): 672x672 -> 48 x 48; new_h = int(round(720 * 48 / 1280, 7)) = 27,
        // padding (48 - 27) // 2 = 10 -> 28 rows: 576 + 28 * 49 = 1948 (same for 1080p: 27 rows again).
        assertEquals(1948, tokens(720, 1280));
        assertEquals(1948, tokens(1080, 1920));
        // 2000x300 (very tall): 1008x336 with s = min(336/300, 1008/2000) = 0.504 keeps
        // int(300 s) * int(2000 s) = 151 * 1008 = 152208 pixels, the most -> 72 x 24; new_w = int(round(300 * 72 / 2000, 7)) = 10,
        // padding 7 -> 72 x 10: 576 + 72 * 11 = 1368.
        assertEquals(1368, tokens(2000, 300));
        // 17x333 (thin strip): 336x672 -> 24 x 48; new_h = int(round(17 * 48 / 333, 7)) = 2,
        // padding 11 -> 2 x 48: 576 + 2 * 49 = 674.
        assertEquals(674, tokens(17, 333));
        // 500x2000: 336x1008 (s = 0.504: 1008 x 252) -> 24 x 72; new_h = int(round(500 * 72 / 2000, 7)) = 18,
        // padding 3 -> 18 x 72: 576 + 18 * 73 = 1890.
        assertEquals(1890, tokens(500, 2000));
    }

    @Test
    void geometryPieces() {
        assertArrayEquals(new int[]{336, 672}, AnyRes.bestResolution(336, 336, PINS), "tie: the first pinpoint wins");
        assertArrayEquals(new int[]{672, 672}, AnyRes.bestResolution(480, 640, PINS));
        assertArrayEquals(new int[]{504, 672}, AnyRes.fittedSize(480, 640, 672, 672), "ceil(480 * 672 / 640) = 504");
        assertArrayEquals(new int[]{336, 112}, AnyRes.fittedSize(1008, 336, 336, 672), "height limits: 336 / 1008 * 336");
        assertArrayEquals(new int[]{36, 48}, AnyRes.unpaddedGrid(480, 640, 48, 48));
        assertArrayEquals(new int[]{48, 36}, AnyRes.unpaddedGrid(640, 480, 48, 48));
        assertEquals(14.0, AnyRes.round7(13.99999999), 0.0, "Python's round(x, 7) before int()");
    }

    @Test
    void tilesAreTheBaseImageThenTheRowsOfThePaddedFit() {
        // A 2 x 6 picture (h x w) fitted to 4 x 8 (pinpoint, tile 4): the fit is 3 x 8
        // (ceil(2 * 8 / 6) = 3), pasted with floor(1 / 2) = 0 rows on top and 1 at the bottom.
        byte[] rgb = new byte[3 * 2 * 6];
        java.util.Arrays.fill(rgb, (byte) 200);
        List<ImagePreprocessor.RgbImage> t = AnyRes.tiles(new ImagePreprocessor.RgbImage(6, 2, rgb), new int[][]{{4, 8}}, 4, 4,
                ImagePreprocessor.NEAREST);
        assertEquals(3, t.size(), "base + 1 x 2 tiles");
        assertEquals(4, t.get(0).width());
        for (int tile = 1; tile <= 2; tile++) {
            byte[] p = t.get(tile).rgb();
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 4; x++)
                    assertEquals(y < 3 ? (byte) 200 : 0, p[3 * (y * 4 + x)], "tile " + tile + " (" + y + ", " + x + ")");
        }
    }
}
