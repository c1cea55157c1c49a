package casp.compress;

import casp.quant.Quantizer;
import casp.quant.aqlm.Aqlm;
import casp.quant.gptq.Gptq;
import casp.quant.gptq.Rtn;
import casp.quant.quip.Quip;
import casp.io.BadInputException;
import casp.model.LlamaModel;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The settings of a uniform scalar quantization run (one method and width for every linear) and
 * the {@link SequentialCompressor.QuantizerPlan} they give.
 *
 * @param method         "rtn", "gptq", "quip" (QuIP# E8P12 at 2 bits, residual VQ at 3 and 4; "quip#" is accepted too)
 *                       or "aqlm"
 * @param bits           2, 3, 4 or 8
 * @param groupSize      columns per group; {@link #AUTO_GROUP} for the default rule of
 *                       {@link #groupSizeFor}; -1 for one group per output channel
 * @param actOrder       GPTQ act-order (with static groups, so g_idx stays monotone)
 * @param symmetric      symmetric grid
 * @param trueSequential [q,k,v] -> o -> [gate,up] -> down inside a block
 * @param samples        calibration samples
 * @param seqLen         tokens per calibration sample
 * @param seed           calibration window seed
 * @param percDamp       GPTQ damping (fraction of mean diag H)
 * @param aqlm           aqlm: the quantizer settings (null: {@link Aqlm.Options#defaults} at bits)
 */
public record CompressionOptions(String method, int bits, int groupSize, boolean actOrder, boolean symmetric,
                                 boolean trueSequential, int samples, int seqLen, long seed, double percDamp,
                                 Aqlm.Options aqlm) {
    /** groupSize value meaning "128, or the largest group <= 128 that divides the width". */
    public static final int AUTO_GROUP = 0;
    /** The preferred group size. */
    public static final int DEFAULT_GROUP = 128;
    /** Below this, a divisor of the width is not worth it and the default group with a short last group is used. */
    static final int MIN_DIVISOR_GROUP = 16;

    /** Options of a scalar-grid method (no AQLM settings). */
    public CompressionOptions(String method, int bits, int groupSize, boolean actOrder, boolean symmetric,
                              boolean trueSequential, int samples, int seqLen, long seed, double percDamp) {
        this(method, bits, groupSize, actOrder, symmetric, trueSequential, samples, seqLen, seed, percDamp, null);
    }

    public CompressionOptions {
        if (!method.equals("rtn") && !method.equals("gptq") && !isQuip(method) && !method.equals("aqlm"))
            throw new BadInputException("--method must be rtn, gptq, quip or aqlm, got '" + method + "'");
        if (isQuip(method) && bits != 2 && bits != 3 && bits != 4)
            throw new BadInputException("--method quip supports --bits 2, 3 or 4 (E8P12, plus residual VQ at 3 and 4), got " + bits);
        if (aqlm != null && !method.equals("aqlm")) throw new IllegalArgumentException("AQLM settings for method " + method);
        if (aqlm != null && aqlm.bits() != bits)
            throw new BadInputException("--bits " + bits + " does not match " + aqlm.numCodebooks() + " codebooks of "
                    + aqlm.codebookBits() + " bits (" + aqlm.bits() + " bits per weight)");
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8 && !(bits == 1 && method.equals("aqlm")))
            throw new BadInputException("--bits must be 2, 3, 4 or 8 (aqlm: also 1), got " + bits);
        if (groupSize < -1) throw new BadInputException("--group-size must be positive, -1 (per channel) or omitted, got " + groupSize);
        if (samples < 1) throw new BadInputException("--samples must be >= 1, got " + samples);
        if (seqLen < 2) throw new BadInputException("--seq-len must be >= 2, got " + seqLen);
        if (!(percDamp >= 0) || Double.isInfinite(percDamp)) throw new BadInputException("damping must be >= 0, got " + percDamp);
    }

    /**
     * The group size used for a linear with {@code width} inputs. An explicit size is used as
     * given (the last group may be shorter; -1 is per channel). The default is 128 when it
     * divides the width, else the largest divisor of the width below 128 (stories260K: 64 for
     * width 64, 86 for width 172), so that all groups are equal; a width whose largest such divisor
     * is under 16 gets 128 with a shorter last group. A group at least as wide as the row is one
     * group per channel.
     */
    public static int groupSizeFor(int requested, int width) {
        if (requested == -1) return -1;
        if (requested != AUTO_GROUP) return requested >= width ? -1 : requested;
        if (width <= DEFAULT_GROUP) return -1;
        for (int g = DEFAULT_GROUP; g >= MIN_DIVISOR_GROUP; g--) if (width % g == 0) return g;
        return DEFAULT_GROUP;
    }

    /** Whether the method is QuIP# ("quip" or "quip#"). */
    public boolean isQuip() {
        return isQuip(method);
    }

    static boolean isQuip(String method) {
        return method.equals("quip") || method.equals("quip#");
    }

    /** The quantizer of every linear of the model under these options. */
    public SequentialCompressor.QuantizerPlan plan(LlamaModel model) {
        return (layer, name) -> quantizer(model.layer(layer).linear(name).in());
    }

    /** aqlm: the quantizer settings (the defaults at bits when none were given). */
    public Aqlm.Options aqlmOptions() {
        return aqlm != null ? aqlm : Aqlm.Options.defaults(bits);
    }

    /** The quantizer for a linear with {@code width} inputs. */
    public Quantizer quantizer(int width) {
        if (isQuip()) return new Quip(Quip.Options.defaults().withBits(bits).withSeed(seed)); // no groups: one scale per linear
        if (method.equals("aqlm")) return new Aqlm(aqlmOptions());
        int g = groupSizeFor(groupSize, width);
        if (method.equals("rtn")) return new Rtn(bits, g, symmetric, false);
        Gptq.Options o = Gptq.Options.defaults(bits).withGroupSize(g).withActOrder(actOrder).withStaticGroups(true)
                .withSymmetric(symmetric).withPercDamp(percDamp);
        return new Gptq(o);
    }

    /** The options as JSON (casp-report.json, the checkpoint's argument check). */
    public ObjectNode toJson() {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("method", method);
        o.put("bits", bits);
        o.put("group_size", groupSize == AUTO_GROUP ? "auto" : String.valueOf(groupSize));
        o.put("act_order", actOrder);
        o.put("sym", symmetric);
        o.put("true_sequential", trueSequential);
        o.put("samples", samples);
        o.put("seq_len", seqLen);
        o.put("seed", seed);
        o.put("damp_percent", percDamp);
        if (method.equals("aqlm")) {
            Aqlm.Options a = aqlmOptions();
            ObjectNode q = o.putObject("aqlm");
            q.put("num_codebooks", a.numCodebooks());
            q.put("codebook_bits", a.codebookBits());
            q.put("beam_width", a.beamWidth());
            q.put("iterations", a.iterations());
            q.put("kmeans_iterations", a.kmeansIterations());
            q.put("rel_tolerance", a.relTolerance());
            q.put("joint_limit", a.jointLimit());
            q.put("seed", a.seed());
        }
        return o;
    }
}
