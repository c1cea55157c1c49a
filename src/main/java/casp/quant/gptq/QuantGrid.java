package casp.quant.gptq;

import casp.kernel.QuantOps;
import casp.quant.Quantizer;
import casp.tensor.DType;

import java.util.Arrays;

/**
 * The scalar min/max quantization grid of GPTQ (ALGORITHMS.md section 6), the "find_params" half of
 * IST-DASLab's Quantizer: for each row of a group of columns it chooses a scale and an integer zero
 * so that q(x) = scale * (clamp(rint(x / scale) + zero, 0, maxq) - zero), maxq = 2^bits - 1.
 *
 * <ul>
 *   <li>Asymmetric: xmin = min(min x, 0), xmax = max(max x, 0), scale = (xmax - xmin) / maxq,
 *       zero = rint(-xmin / scale).</li>
 *   <li>Symmetric: amax = max(|xmin|, xmax), the range is [-amax, amax], zero = (maxq + 1) / 2.
 *       (AutoGPTQ keeps xmin = 0 for a row with no negative value, which wastes half the grid;
 *       we always use the symmetric range.)</li>
 *   <li>A row of zeros gets the range [-1, 1] (as AutoGPTQ), so scale is never 0.</li>
 *   <li>Asymmetric zeros are at least 1 (see {@link #rangeParams}): the GPTQ v1 format cannot
 *       store a zero of 0.</li>
 *   <li>Scales are rounded up to an fp16 value (within [2^-24, 65504]) before the zero and the
 *       codes are computed, so the codes are exactly right for the fp16 scales the GPTQ format
 *       stores, and the grid still covers [xmin, xmax] (rounding to nearest could cut off the
 *       top step, by over 1% of the range for scales in fp16's subnormal range).</li>
 *   <li>MSE clipping (optional): the range is shrunk by p = 1, 0.99, ..., 0.20 (81 candidates) and
 *       each row keeps the p with the least sum |q(x) - x|^2.4 (AutoGPTQ: grid 100, norm 2.4).</li>
 * </ul>
 *
 * <p>Data layout: a group is {@code count} columns of {@code n} rows stored transposed,
 * {@code x[off + c * ld + r]}; parameters go to {@code scale[pOff + r]}, {@code zero[pOff + r]}.
 */
public final class QuantGrid {
    /** Bits per code: 2, 3, 4 or 8. */
    public final int bits;
    /** Largest code, 2^bits - 1. */
    public final int maxq;
    public final boolean symmetric;
    public final boolean mseClip;

    /** Exponent of the clipping norm (AutoGPTQ: 2.4). */
    public static final float CLIP_NORM = 2.4f;
    /** Shrink factors tried by MSE clipping: p = 1 - i / CLIP_GRID for i = 0 .. CLIP_STEPS. */
    public static final int CLIP_GRID = 100, CLIP_STEPS = 80;

    private static final float FP16_MIN = 0x1p-24f, FP16_MAX = 65504f;

    public QuantGrid(int bits, boolean symmetric, boolean mseClip) {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("bits must be 2, 3, 4 or 8, got " + bits);
        }
        this.bits = bits;
        this.maxq = (1 << bits) - 1;
        this.symmetric = symmetric;
        this.mseClip = mseClip;
    }

    /** The scale as stored: the smallest fp16 value >= s, within [2^-24, 65504] (never 0 or infinite). */
    public static float roundScale(float s) {
        float c = Math.max(FP16_MIN, Math.min(FP16_MAX, s));
        short h = DType.floatToF16(c);
        if (DType.f16ToFloat(h) < c) h++; // positive fp16 values are ordered like their bit patterns
        return DType.f16ToFloat(h);
    }

    /**
     * Chooses scale and zero for each of n rows from their values in {@code count} columns.
     */
    public void findParams(float[] x, int off, int ld, int n, int count, float[] scale, float[] zero, int pOff) {
        float[] xmin = new float[n], xmax = new float[n];
        QuantOps.columnMinMax(x, off, ld, n, count, xmin, xmax, 0); // both start at 0: range includes 0
        rangeParams(xmin, xmax, n, 1f, scale, zero, pOff);
        if (!mseClip) return;
        float[] best = new float[n], err = new float[n], s1 = new float[n], z1 = new float[n];
        QuantOps.gridError(x, off, ld, n, count, scale, zero, pOff, maxq, CLIP_NORM, best, 0);
        for (int i = 1; i <= CLIP_STEPS; i++) {
            rangeParams(xmin, xmax, n, 1f - (float) i / CLIP_GRID, s1, z1, 0);
            Arrays.fill(err, 0f);
            QuantOps.gridError(x, off, ld, n, count, s1, z1, 0, maxq, CLIP_NORM, err, 0);
            for (int r = 0; r < n; r++) {
                if (err[r] < best[r]) { // strict: ties keep the larger range
                    best[r] = err[r];
                    scale[pOff + r] = s1[r];
                    zero[pOff + r] = z1[r];
                }
            }
        }
    }

    /** Scale and zero of each row for the range [p * xmin, p * xmax] (xmin <= 0 <= xmax). */
    void rangeParams(float[] xmin, float[] xmax, int n, float p, float[] scale, float[] zero, int pOff) {
        for (int r = 0; r < n; r++) {
            float lo = xmin[r], hi = xmax[r];
            if (symmetric) {
                hi = Math.max(-lo, hi);
                lo = -hi;
            }
            if (lo == 0f && hi == 0f) {
                lo = -1f;
                hi = 1f;
            }
            lo *= p;
            hi *= p;
            float s = roundScale((hi - lo) / maxq);
            float z;
            if (symmetric) {
                z = (maxq + 1) / 2;
            } else {
                z = (float) Math.rint(-lo / s);
                if (z < 1f) {
                    // The GPTQ v1 format stores zero - 1 in `bits` bits, so zero 0 cannot be stored.
                    // It arises only when the negative part is under half a step: shift the grid
                    // one step down and stretch it so that it still reaches hi.
                    z = 1f;
                    s = roundScale(hi / (maxq - 1));
                }
                z = Math.min(maxq, z); // only reachable when the scale was clamped to the fp16 range
            }
            scale[pOff + r] = s;
            zero[pOff + r] = z;
        }
    }

    /** q(x) for one value: scale * (clamp(rint(x / scale) + zero, 0, maxq) - zero). */
    public float quantize(float x, float scale, float zero) {
        return QuantOps.quantize(x, scale, zero, maxq);
    }

    @Override
    public String toString() {
        return bits + "-bit " + (symmetric ? "symmetric" : "asymmetric") + (mseClip ? " mse-clip" : "");
    }
}
