package casp.model;

import casp.io.BadInputException;
import casp.io.WeightStore;
import casp.kernel.VisionOps;

/**
 * LLaVA's multi-modal projector: linear_2(act(linear_1(features))), mapping vision features
 * [rows, visionHidden] to language-model embeddings [rows, textHidden]. act is exact GELU
 * ("gelu", erf) or "quick_gelu". F16 / BF16 weights stay in 16 bits.
 */
public final class LlavaProjector {
    private final Linear linear1, linear2;
    private final boolean quick;

    private LlavaProjector(Linear linear1, Linear linear2, boolean quick) {
        this.linear1 = linear1;
        this.linear2 = linear2;
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
        float[] b1 = bias ? w.floats(prefix + "linear_1.bias", mid) : null;
        float[] b2 = bias ? w.floats(prefix + "linear_2.bias", textHidden) : null;
        return new LlavaProjector(HalfLinear.load(w, prefix + "linear_1.weight", visionHidden, mid, b1),
                HalfLinear.load(w, prefix + "linear_2.weight", mid, textHidden, b2), act.equals("quick_gelu"));
    }

    public int inputSize() { return linear1.in(); }

    public int outputSize() { return linear2.out(); }

    /** Projects rows x in features [rows, inputSize()] to [rows, outputSize()]. */
    public float[] forward(float[] x, int rows) {
        if (x.length < rows * linear1.in()) throw new IllegalArgumentException("projector input too short");
        int mid = linear1.out();
        float[] h = new float[rows * mid];
        linear1.forward(x, 0, h, 0, rows);
        if (quick) VisionOps.quickGelu(h, 0, rows * mid);
        else VisionOps.gelu(h, 0, rows * mid);
        float[] y = new float[rows * linear2.out()];
        linear2.forward(h, 0, y, 0, rows);
        return y;
    }
}
