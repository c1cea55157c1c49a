package casp.model;

import casp.io.BadInputException;
import casp.io.WeightStore;
import casp.kernel.VisionOps;

/**
 * LLaVA's multi-modal projector: linear_2(act(linear_1(features))), mapping vision features
 * [rows, visionHidden] to language-model embeddings [rows, textHidden]. act is exact GELU
 * ("gelu", erf) or "quick_gelu".
 */
public final class LlavaProjector {
    private final float[] w1, b1, w2, b2;
    private final int in, mid, out;
    private final boolean quick;

    private LlavaProjector(float[] w1, float[] b1, float[] w2, float[] b2, int in, int mid, int out, boolean quick) {
        this.w1 = w1;
        this.b1 = b1;
        this.w2 = w2;
        this.b2 = b2;
        this.in = in;
        this.mid = mid;
        this.out = out;
        this.quick = quick;
    }

    /** Loads prefix + "linear_1.weight" etc. (prefix e.g. "multi_modal_projector."). */
    public static LlavaProjector load(WeightStore w, String prefix, String act, boolean bias, int visionHidden, int textHidden) {
        if (!act.equals("gelu") && !act.equals("quick_gelu"))
            throw new BadInputException("config.json: unsupported projector_hidden_act '" + act + "' (supported: gelu, quick_gelu)");
        long[] s1 = w.info(prefix + "linear_1.weight").shape();
        if (s1.length != 2 || s1[1] != visionHidden)
            throw new BadInputException(prefix + "linear_1.weight has shape " + java.util.Arrays.toString(s1)
                    + ", expected [*, " + visionHidden + "] (vision hidden size)");
        int mid = (int) s1[0];
        float[] w1 = w.floats(prefix + "linear_1.weight", mid, visionHidden);
        float[] w2 = w.floats(prefix + "linear_2.weight", textHidden, mid);
        float[] b1 = null, b2 = null;
        if (bias) {
            b1 = w.floats(prefix + "linear_1.bias", mid);
            b2 = w.floats(prefix + "linear_2.bias", textHidden);
        }
        return new LlavaProjector(w1, b1, w2, b2, visionHidden, mid, textHidden, act.equals("quick_gelu"));
    }

    public int inputSize() { return in; }

    public int outputSize() { return out; }

    /** Projects rows x in features [rows, inputSize()] to [rows, outputSize()]. */
    public float[] forward(float[] x, int rows) {
        if (x.length < rows * in) throw new IllegalArgumentException("projector input too short");
        float[] h = new float[rows * mid];
        ClipVisionModel.linear(x, rows, in, w1, b1, mid, h);
        if (quick) VisionOps.quickGelu(h, 0, rows * mid);
        else VisionOps.gelu(h, 0, rows * mid);
        float[] y = new float[rows * out];
        ClipVisionModel.linear(h, rows, mid, w2, b2, out, y);
        return y;
    }
}
