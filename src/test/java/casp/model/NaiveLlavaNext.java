package casp.model;

import casp.io.ImagePreprocessor;
import casp.io.WeightStore;
import casp.kernel.VisionChecks;

import java.util.ArrayList;
import java.util.List;

import static casp.model.LlavaNextFixture.*;

/**
 * An obviously-correct LLaVA-NeXT / NeXT-Video visual path for tests, in float64 plain loops,
 * written from transformers' image_processing_llava_next.py (select_best_resolution,
 * get_patch_output_size, _pad_for_patching, divide_to_patches), modeling_clip.py (CLIPVisionModel),
 * modeling_llava_next.py (pack_image_features, unpad_image) and modeling_llava_next_video.py
 * (LlavaNextVideoPooler), sharing no code with the runtime except Pillow-exact resampling
 * ({@link ImagePreprocessor#resize}, checked against Pillow's outputs elsewhere) and the weight
 * reader. The language model is {@link NaiveLlama}.
 */
final class NaiveLlavaNext {
    private final WeightStore w;
    private final String vp, pp, newline;
    private final String poolMode;
    private final int side = TILE / PATCH;

    NaiveLlavaNext(WeightStore w, boolean newNames, String poolMode) {
        this.w = w;
        this.vp = newNames ? "model.vision_tower.vision_model." : "vision_tower.vision_model.";
        this.pp = newNames ? "model.multi_modal_projector." : "multi_modal_projector.";
        this.newline = newNames ? "model.image_newline" : "image_newline";
        this.poolMode = poolMode;
    }

    private double[] v(String name) {
        float[] f = w.floats(name);
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    /** y = W x + b, W [out][in] row-major in a flat array. */
    private static double[] lin(double[] W, double[] b, double[] x) {
        int out = b.length, in = x.length;
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double s = b[o];
            for (int i = 0; i < in; i++) s += W[o * in + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static double[] layerNorm(double[] x, double[] g, double[] b) {
        double m = 0, var = 0;
        for (double a : x) m += a;
        m /= x.length;
        for (double a : x) var += (a - m) * (a - m);
        var /= x.length;
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = (x[i] - m) / Math.sqrt(var + 1e-5) * g[i] + b[i];
        return y;
    }

    /** CHW pixels of a tile: (v / 255 - mean) / std. */
    private static double[][][] pixels(ImagePreprocessor.RgbImage img) {
        double[][][] p = new double[3][img.height()][img.width()];
        for (int y = 0; y < img.height(); y++)
            for (int x = 0; x < img.width(); x++)
                for (int c = 0; c < 3; c++)
                    p[c][y][x] = ((img.rgb()[3 * (y * img.width() + x) + c] & 0xff) / 255.0 - MEAN[c]) / STD[c];
        return p;
    }

    /** hidden_states[-2] of the CLIP tower without the class token: [side * side][V_HIDDEN]. */
    double[][] towerFeatures(ImagePreprocessor.RgbImage tile) {
        double[][][] px = pixels(tile);
        int np = side * side, h = V_HIDDEN;
        double[] pw = v(vp + "embeddings.patch_embedding.weight"), cls = v(vp + "embeddings.class_embedding");
        double[] pos = v(vp + "embeddings.position_embedding.weight");
        double[][] x = new double[np + 1][h];
        x[0] = cls.clone();
        for (int gy = 0; gy < side; gy++)
            for (int gx = 0; gx < side; gx++)
                for (int o = 0; o < h; o++) {
                    double s = 0;
                    for (int c = 0; c < 3; c++)
                        for (int ky = 0; ky < PATCH; ky++)
                            for (int kx = 0; kx < PATCH; kx++)
                                s += pw[((o * 3 + c) * PATCH + ky) * PATCH + kx] * px[c][gy * PATCH + ky][gx * PATCH + kx];
                    x[1 + gy * side + gx][o] = s;
                }
        for (int t = 0; t <= np; t++) {
            for (int i = 0; i < h; i++) x[t][i] += pos[t * h + i];
            x[t] = layerNorm(x[t], v(vp + "pre_layrnorm.weight"), v(vp + "pre_layrnorm.bias"));
        }
        // vision_feature_layer -2 of a 2-layer tower: the output of layer 0.
        for (int l = 0; l < V_LAYERS - 1; l++) x = clipLayer(x, vp + "encoder.layers." + l + ".");
        double[][] sel = new double[np][];
        System.arraycopy(x, 1, sel, 0, np);
        return sel;
    }

    private double[][] clipLayer(double[][] x, String p) {
        int T = x.length, h = V_HIDDEN, hd = h / V_HEADS;
        double[][] q = new double[T][], k = new double[T][], val = new double[T][];
        for (int t = 0; t < T; t++) {
            double[] n = layerNorm(x[t], v(p + "layer_norm1.weight"), v(p + "layer_norm1.bias"));
            q[t] = lin(v(p + "self_attn.q_proj.weight"), v(p + "self_attn.q_proj.bias"), n);
            k[t] = lin(v(p + "self_attn.k_proj.weight"), v(p + "self_attn.k_proj.bias"), n);
            val[t] = lin(v(p + "self_attn.v_proj.weight"), v(p + "self_attn.v_proj.bias"), n);
        }
        double[][] out = new double[T][];
        for (int t = 0; t < T; t++) {
            double[] att = new double[h];
            for (int a = 0; a < V_HEADS; a++) {
                double[] s = new double[T];
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    for (int i = 0; i < hd; i++) s[j] += q[t][a * hd + i] * k[j][a * hd + i];
                    s[j] /= Math.sqrt(hd);
                    max = Math.max(max, s[j]);
                }
                for (int j = 0; j < T; j++) sum += s[j] = Math.exp(s[j] - max);
                for (int j = 0; j < T; j++) for (int i = 0; i < hd; i++) att[a * hd + i] += s[j] / sum * val[j][a * hd + i];
            }
            double[] o = lin(v(p + "self_attn.out_proj.weight"), v(p + "self_attn.out_proj.bias"), att);
            out[t] = x[t].clone();
            for (int i = 0; i < h; i++) out[t][i] += o[i];
        }
        for (int t = 0; t < T; t++) {
            double[] n = layerNorm(out[t], v(p + "layer_norm2.weight"), v(p + "layer_norm2.bias"));
            double[] m = lin(v(p + "mlp.fc1.weight"), v(p + "mlp.fc1.bias"), n);
            for (int i = 0; i < m.length; i++) m[i] = m[i] / (1 + Math.exp(-1.702 * m[i])); // quick_gelu
            double[] y = lin(v(p + "mlp.fc2.weight"), v(p + "mlp.fc2.bias"), m);
            for (int i = 0; i < h; i++) out[t][i] += y[i];
        }
        return out;
    }

    /** linear_2(gelu(linear_1(x))), gelu with erf. */
    double[] project(double[] x) {
        double[] a = lin(v(pp + "linear_1.weight"), v(pp + "linear_1.bias"), x);
        for (int i = 0; i < a.length; i++) a[i] = 0.5 * a[i] * (1 + VisionChecks.erf(a[i] / Math.sqrt(2)));
        return lin(v(pp + "linear_2.weight"), v(pp + "linear_2.bias"), a);
    }

    /** select_best_resolution: [height, width]. */
    static int[] best(int height, int width) {
        int[] fit = null;
        long bestEff = 0, bestWaste = Long.MAX_VALUE;
        for (int[] pin : PINPOINTS) {
            double scale = Math.min(pin[1] / (double) width, pin[0] / (double) height);
            long eff = Math.min((long) (width * scale) * (long) (height * scale), (long) width * height);
            long waste = (long) pin[0] * pin[1] - eff;
            if (eff > bestEff || (eff == bestEff && waste < bestWaste)) {
                bestEff = eff;
                bestWaste = waste;
                fit = pin;
            }
        }
        return fit;
    }

    /** The visual tokens of an image, [tokens][T_HIDDEN]. */
    List<double[]> image(ImagePreprocessor.RgbImage img) {
        int H = img.height(), W = img.width();
        int[] b = best(H, W);
        // get_patch_output_size
        double sw = b[1] / (double) W, sh = b[0] / (double) H;
        int nh, nw;
        if (sw < sh) {
            nw = b[1];
            nh = (int) Math.min(Math.ceil(H * sw), b[0]);
        } else {
            nh = b[0];
            nw = (int) Math.min(Math.ceil(W * sh), b[1]);
        }
        ImagePreprocessor.RgbImage resized = ImagePreprocessor.resize(img, nw, nh, ImagePreprocessor.BICUBIC);
        int padX = (b[1] - nw) / 2, padY = (b[0] - nh) / 2;
        int rowsT = b[0] / TILE, colsT = b[1] / TILE;
        // feats[tileRow][tileCol] = projected features of that tile
        double[][][][] feats = new double[rowsT][colsT][][];
        for (int ty = 0; ty < rowsT; ty++)
            for (int tx = 0; tx < colsT; tx++) {
                byte[] t = new byte[3 * TILE * TILE];
                for (int y = 0; y < TILE; y++)
                    for (int x = 0; x < TILE; x++) {
                        int sy = ty * TILE + y - padY, sx = tx * TILE + x - padX;
                        if (sy < 0 || sy >= nh || sx < 0 || sx >= nw) continue; // black padding
                        for (int c = 0; c < 3; c++) t[3 * (y * TILE + x) + c] = resized.rgb()[3 * (sy * nw + sx) + c];
                    }
                double[][] f = towerFeatures(new ImagePreprocessor.RgbImage(TILE, TILE, t));
                for (int i = 0; i < f.length; i++) f[i] = project(f[i]);
                feats[ty][tx] = f;
            }
        List<double[]> out = new ArrayList<>();
        for (double[] f : towerFeatures(ImagePreprocessor.resize(img, TILE, TILE, ImagePreprocessor.BICUBIC))) out.add(project(f));
        // unpad_image on the (rowsT * side) x (colsT * side) grid
        int gh = rowsT * side, gw = colsT * side, r0 = 0, r1 = gh, c0 = 0, c1 = gw;
        if ((double) W / H > (double) gw / gh) {
            int newH = (int) (Math.round(H * ((double) gw / W) * 1e7) / 1e7);
            int pad = (gh - newH) / 2;
            r0 = pad;
            r1 = gh - pad;
        } else {
            int newW = (int) (Math.round(W * ((double) gh / H) * 1e7) / 1e7);
            int pad = (gw - newW) / 2;
            c0 = pad;
            c1 = gw - pad;
        }
        double[] nl = v(newline);
        for (int y = r0; y < r1; y++) {
            for (int x = c0; x < c1; x++) out.add(feats[y / side][x / side][(y % side) * side + x % side]);
            out.add(nl);
        }
        return out;
    }

    /** The visual tokens of video frames: per frame CLIP's resize / center crop, tower, pool, project. */
    List<double[]> video(List<ImagePreprocessor.RgbImage> frames) {
        List<double[]> out = new ArrayList<>();
        for (ImagePreprocessor.RgbImage f : frames) {
            int W = f.width(), H = f.height();
            int rw = W <= H ? TILE : (int) ((long) TILE * W / H), rh = W <= H ? (int) ((long) TILE * H / W) : TILE;
            ImagePreprocessor.RgbImage r = ImagePreprocessor.resize(f, rw, rh, ImagePreprocessor.BICUBIC);
            int top = (rh - TILE) / 2, left = (rw - TILE) / 2;
            byte[] crop = new byte[3 * TILE * TILE];
            for (int y = 0; y < TILE; y++) System.arraycopy(r.rgb(), 3 * ((y + top) * rw + left), crop, 3 * y * TILE, 3 * TILE);
            double[][] feat = towerFeatures(new ImagePreprocessor.RgbImage(TILE, TILE, crop));
            int p = side / 2;
            for (int py = 0; py < p; py++)
                for (int px = 0; px < p; px++) {
                    double[] pooled = new double[V_HIDDEN];
                    java.util.Arrays.fill(pooled, poolMode.equals("max") ? Double.NEGATIVE_INFINITY : 0);
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            double[] a = feat[(2 * py + dy) * side + 2 * px + dx];
                            for (int i = 0; i < V_HIDDEN; i++)
                                pooled[i] = poolMode.equals("max") ? Math.max(pooled[i], a[i]) : pooled[i] + a[i] / 4;
                        }
                    out.add(project(pooled));
                }
        }
        return out;
    }
}
