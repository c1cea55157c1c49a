package casp.quant.lowrank;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.model.Linear;
import casp.quant.CompressedLayer;
import casp.quant.Float32Format;
import casp.quant.StorageFormat;
import casp.quant.aqlm.AqlmFormat;
import casp.quant.gptq.GptqFormat;
import casp.quant.quip.QuipFormat;

import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A projection stored as two factors under its factor prefixes ("...q_proj" -> "...q_u_proj" for A,
 * "...q_v_proj" for B, see {@link LowRankLinear}), each in any code format or as a float32 weight.
 */
public final class LowRankFormat implements StorageFormat {
    public static final LowRankFormat INSTANCE = new LowRankFormat();

    private LowRankFormat() {}

    /** The forms a factor may have, in the order they are recognised: every code format, then a float32 weight. */
    public static final List<StorageFormat> FACTOR_FORMATS = List.of(QuipFormat.INSTANCE, AqlmFormat.INSTANCE, GptqFormat.INSTANCE,
            Float32Format.INSTANCE);

    /** The format of the factor stored under prefix, or null when there is none. */
    public static StorageFormat factorFormat(Predicate<String> has, String prefix) {
        for (StorageFormat f : FACTOR_FORMATS) if (f.storedAt(has, prefix)) return f;
        return null;
    }

    @Override public String name() { return "low-rank"; }

    @Override
    public boolean storedAt(Predicate<String> has, String prefix) {
        if (!prefix.endsWith("_proj")) return false;
        return factorFormat(has, LowRankLinear.uPrefix(prefix)) != null
                || factorFormat(has, LowRankLinear.vPrefix(prefix)) != null;
    }

    /**
     * Reads both factors. The rank and the factor widths come from the recorded stats ("rank",
     * "a_bits", "b_bits"): QuIP#'s padded codes and AQLM's groups of 8 do not show the rank, GPTQ
     * tensors do not show the width. Without a recorded rank it is taken from a GPTQ or float32 A.
     */
    @Override
    public CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        String u = LowRankLinear.uPrefix(prefix), v = LowRankLinear.vPrefix(prefix);
        Predicate<String> has = st.tensors()::containsKey;
        StorageFormat fa = factorFormat(has, u), fb = factorFormat(has, v);
        if (fa == null || fb == null) throw new BadInputException(st.path() + ": low-rank " + prefix + " lacks factor " + (fa == null ? u : v));
        int rank = stats.getOrDefault("rank", 0).intValue();
        if (rank < 1 && fa == GptqFormat.INSTANCE) rank = (int) st.info(u + "." + GptqFormat.G_IDX).shape()[0];
        if (rank < 1 && fa != GptqFormat.INSTANCE && st.tensors().containsKey(u + ".weight")) rank = (int) st.info(u + ".weight").shape()[1];
        if (rank < 1) throw new BadInputException(st.path() + ": factors " + u + " / " + v + " have no recorded rank");
        int aBits = stats.getOrDefault("a_bits", 0).intValue(), bBits = stats.getOrDefault("b_bits", 0).intValue();
        CompressedLayer a = fa.read(st, u, fa.name(), rows, rank, aBits, Map.of());
        CompressedLayer b = fb.read(st, v, fb.name(), rank, cols, bBits, Map.of());
        if (a.bits() != aBits || b.bits() != bBits)
            throw new BadInputException(st.path() + ": factors " + u + " / " + v + " do not match their recorded widths");
        return new LowRankLayer(method, rows, cols, rank, a, b, stats);
    }

    @Override
    public Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        return LowRankLinear.load(folder, prefix, in, out, bias);
    }
}
