package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels of {@link DequantKernels} for the slot layout (8-bit codes, and any width when a
 * test asks for that layout; 2, 3 and 4 bits normally take {@link RowLaneSimd}); loaded only if
 * VectorSupport.enabled().
 *
 * <p>C2 in JDK 17 boxes a vector that is carried around two nested loops (and one merged from
 * two branches), which makes a kernel ~20 times slower. The kernels are shaped so that each
 * vector is carried by exactly one loop: per-group accumulators start fresh inside the segment
 * loop, and the totals are carried only by the outer loop. Four rows at a time is also the limit:
 * eight made C2 box the vectors again.
 */
final class DequantSimd {
    private DequantSimd() {}

    private static final VectorSpecies<Float> FS = VectorProbe.floatSpecies();
    private static final VectorSpecies<Integer> IS = VectorProbe.intSpecies();
    /** Lanes: 4, 8 or 16 (VectorSupport checks). */
    static final int L = FS.length();
    private static final int SLOT = QuantizedMatrix.SLOT;
    private static final int BLOCK = QuantizedMatrix.BLOCK;
    private static final boolean FMA = VectorSupport.FMA;

    /** a * b + c; small enough to be inlined, so no vector escapes. */
    private static FloatVector madd(FloatVector a, FloatVector b, FloatVector c) {
        return FMA ? a.fma(b, c) : a.mul(b).add(c);
    }

    /** Rows [r0, r1) of y = W x with the kernel that fits the lane count and the layout. */
    static void rows(QuantizedMatrix q, int r0, int r1, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        int r = r0;
        if (L == 16) {
            for (; r + 4 <= r1; r += 4) rows4Lanes16(q, r, xs, xo, xg, y, yOff);
        } else if (L == 8) {
            for (; r + 2 <= r1; r += 2) rows2Lanes8(q, r, xs, xo, xg, y, yOff);
        } else {
            for (; r + 4 <= r1; r += 4) rows4(q, r, xs, xo, xg, y, yOff);
        }
        for (; r < r1; r++) rows1(q, r, xs, xo, xg, y, yOff);
    }

    /**
     * 16 lanes (512-bit): one vector per row holds a whole block of 16 words; it is loaded once per
     * segment (the slots of one block inside one group) and shifted for each slot. Four rows share
     * each x load. The loops are shaped so that no vector is carried around two nested loops
     * (C2 in JDK 17 boxes such vectors): the group accumulators start fresh in every segment.
     */
    static void rows4Lanes16(QuantizedMatrix q, int r, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        final int[] w = q.words;
        final int bits = q.bits, spw = q.slotsPerWord, slots = q.slots, groups = q.groups, spg = q.slotsPerGroup;
        final int mask = (1 << bits) - 1;
        final int o0 = q.rowBase(r), o1 = q.rowBase(r + 1), o2 = q.rowBase(r + 2), o3 = q.rowBase(r + 3);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        int t = 0, g = 0, blk = 0, blkEnd = Math.min(spw, slots), gEnd = Math.min(spg, slots);
        while (t < slots) {
            int segEnd = Math.min(blkEnd, gEnd);
            int wb = blk * BLOCK;
            IntVector w0 = IntVector.fromArray(IS, w, o0 + wb);
            IntVector w1 = IntVector.fromArray(IS, w, o1 + wb);
            IntVector w2 = IntVector.fromArray(IS, w, o2 + wb);
            IntVector w3 = IntVector.fromArray(IS, w, o3 + wb);
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int sh = (t - blk * spw) * bits; t < segEnd; t++, sh += bits) {
                FloatVector xv = FloatVector.fromArray(FS, xs, xo + t * SLOT);
                a0 = madd(codes(w0, sh, mask), xv, a0);
                a1 = madd(codes(w1, sh, mask), xv, a1);
                a2 = madd(codes(w2, sh, mask), xv, a2);
                a3 = madd(codes(w3, sh, mask), xv, a3);
            }
            t0 = madd(a0, FloatVector.broadcast(FS, q.scale(r, g)), t0);
            t1 = madd(a1, FloatVector.broadcast(FS, q.scale(r + 1, g)), t1);
            t2 = madd(a2, FloatVector.broadcast(FS, q.scale(r + 2, g)), t2);
            t3 = madd(a3, FloatVector.broadcast(FS, q.scale(r + 3, g)), t3);
            if (t == blkEnd) {
                blk++;
                blkEnd = Math.min(blkEnd + spw, slots);
            }
            if (t == gEnd) {
                g++;
                gEnd = Math.min(gEnd + spg, slots);
            }
        }
        y[yOff + r] = t0.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r, xg);
        y[yOff + r + 1] = t1.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r + 1, xg);
        y[yOff + r + 2] = t2.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r + 2, xg);
        y[yOff + r + 3] = t3.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r + 3, xg);
    }

    /** 8 lanes (256-bit): as {@link #rows4Lanes16} with a block in two vectors per row, two rows at a time. */
    static void rows2Lanes8(QuantizedMatrix q, int r, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        final int[] w = q.words;
        final int bits = q.bits, spw = q.slotsPerWord, slots = q.slots, groups = q.groups, spg = q.slotsPerGroup;
        final int mask = (1 << bits) - 1;
        final int o0 = q.rowBase(r), o1 = q.rowBase(r + 1);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0;
        int t = 0, g = 0, blk = 0, blkEnd = Math.min(spw, slots), gEnd = Math.min(spg, slots);
        while (t < slots) {
            int segEnd = Math.min(blkEnd, gEnd);
            int wb = blk * BLOCK;
            IntVector w0a = IntVector.fromArray(IS, w, o0 + wb), w0b = IntVector.fromArray(IS, w, o0 + wb + 8);
            IntVector w1a = IntVector.fromArray(IS, w, o1 + wb), w1b = IntVector.fromArray(IS, w, o1 + wb + 8);
            FloatVector a0 = FloatVector.zero(FS), b0 = a0, a1 = a0, b1 = a0;
            for (int sh = (t - blk * spw) * bits; t < segEnd; t++, sh += bits) {
                FloatVector xa = FloatVector.fromArray(FS, xs, xo + t * SLOT);
                FloatVector xb = FloatVector.fromArray(FS, xs, xo + t * SLOT + 8);
                a0 = madd(codes(w0a, sh, mask), xa, a0);
                b0 = madd(codes(w0b, sh, mask), xb, b0);
                a1 = madd(codes(w1a, sh, mask), xa, a1);
                b1 = madd(codes(w1b, sh, mask), xb, b1);
            }
            t0 = madd(a0.add(b0), FloatVector.broadcast(FS, q.scale(r, g)), t0);
            t1 = madd(a1.add(b1), FloatVector.broadcast(FS, q.scale(r + 1, g)), t1);
            if (t == blkEnd) {
                blk++;
                blkEnd = Math.min(blkEnd + spw, slots);
            }
            if (t == gEnd) {
                g++;
                gEnd = Math.min(gEnd + spg, slots);
            }
        }
        y[yOff + r] = t0.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r, xg);
        y[yOff + r + 1] = t1.reduceLanes(VectorOperators.ADD) - DequantKernels.zeroTerm(q, r + 1, xg);
    }

    /** The codes at bit offset sh of each lane's word, as floats. */
    private static FloatVector codes(IntVector words, int sh, int mask) {
        return (FloatVector) words.lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask)
                .convertShape(VectorOperators.I2F, FS, 0);
    }

    /** Four rows at once, generic lane count (4, 8 or 16): words reloaded per slot. */
    static void rows4(QuantizedMatrix q, int r, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        final int[] w = q.words;
        final int bits = q.bits, spw = q.slotsPerWord, slots = q.slots, groups = q.groups, spg = q.slotsPerGroup;
        final int mask = (1 << bits) - 1;
        final int o0 = q.rowBase(r), o1 = q.rowBase(r + 1), o2 = q.rowBase(r + 2), o3 = q.rowBase(r + 3);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        float z0 = 0, z1 = 0, z2 = 0, z3 = 0;
        int t = 0, k = 0, wb = 0;
        for (int g = 0; g < groups; g++) {
            int tEnd = Math.min(slots, t + spg);
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (; t < tEnd; t++) {
                int sh = k * bits;
                int xi = xo + t * SLOT;
                for (int h = 0; h < SLOT; h += L) {
                    FloatVector xv = FloatVector.fromArray(FS, xs, xi + h);
                    IntVector c0 = IntVector.fromArray(IS, w, o0 + wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                    IntVector c1 = IntVector.fromArray(IS, w, o1 + wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                    IntVector c2 = IntVector.fromArray(IS, w, o2 + wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                    IntVector c3 = IntVector.fromArray(IS, w, o3 + wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                    a0 = madd((FloatVector) c0.convertShape(VectorOperators.I2F, FS, 0), xv, a0);
                    a1 = madd((FloatVector) c1.convertShape(VectorOperators.I2F, FS, 0), xv, a1);
                    a2 = madd((FloatVector) c2.convertShape(VectorOperators.I2F, FS, 0), xv, a2);
                    a3 = madd((FloatVector) c3.convertShape(VectorOperators.I2F, FS, 0), xv, a3);
                }
                if (++k == spw) {
                    k = 0;
                    wb += BLOCK;
                }
            }
            float s0 = q.scale(r, g), s1 = q.scale(r + 1, g), s2 = q.scale(r + 2, g), s3 = q.scale(r + 3, g);
            t0 = madd(a0, FloatVector.broadcast(FS, s0), t0);
            t1 = madd(a1, FloatVector.broadcast(FS, s1), t1);
            t2 = madd(a2, FloatVector.broadcast(FS, s2), t2);
            t3 = madd(a3, FloatVector.broadcast(FS, s3), t3);
            float xgg = xg[g];
            z0 += s0 * q.zero(r, g) * xgg;
            z1 += s1 * q.zero(r + 1, g) * xgg;
            z2 += s2 * q.zero(r + 2, g) * xgg;
            z3 += s3 * q.zero(r + 3, g) * xgg;
        }
        y[yOff + r] = t0.reduceLanes(VectorOperators.ADD) - z0;
        y[yOff + r + 1] = t1.reduceLanes(VectorOperators.ADD) - z1;
        y[yOff + r + 2] = t2.reduceLanes(VectorOperators.ADD) - z2;
        y[yOff + r + 3] = t3.reduceLanes(VectorOperators.ADD) - z3;
    }

    static void rows1(QuantizedMatrix q, int r, float[] xs, int xo, float[] xg, float[] y, int yOff) {
        final int[] w = q.words;
        final int bits = q.bits, spw = q.slotsPerWord, slots = q.slots, groups = q.groups, spg = q.slotsPerGroup;
        final int mask = (1 << bits) - 1;
        final int o0 = q.rowBase(r);
        FloatVector t0 = FloatVector.zero(FS);
        float z0 = 0;
        int t = 0, k = 0, wb = 0;
        for (int g = 0; g < groups; g++) {
            int tEnd = Math.min(slots, t + spg);
            FloatVector a0 = FloatVector.zero(FS);
            for (; t < tEnd; t++) {
                int sh = k * bits;
                int xi = xo + t * SLOT;
                for (int h = 0; h < SLOT; h += L) {
                    FloatVector xv = FloatVector.fromArray(FS, xs, xi + h);
                    IntVector c0 = IntVector.fromArray(IS, w, o0 + wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                    a0 = madd((FloatVector) c0.convertShape(VectorOperators.I2F, FS, 0), xv, a0);
                }
                if (++k == spw) {
                    k = 0;
                    wb += BLOCK;
                }
            }
            float s0 = q.scale(r, g);
            t0 = madd(a0, FloatVector.broadcast(FS, s0), t0);
            z0 += s0 * q.zero(r, g) * xg[g];
        }
        y[yOff + r] = t0.reduceLanes(VectorOperators.ADD) - z0;
    }

    /** Vector body of {@link DequantKernels#dequantizeTile}. */
    static void dequantizeTile(QuantizedMatrix q, int r0, int tr, int c0, int kc, float[] buf, int ld) {
        final int[] w = q.words;
        final int bits = q.bits, spw = q.slotsPerWord, spg = q.slotsPerGroup, mask = (1 << bits) - 1;
        final int t0 = c0 / SLOT, t1 = (c0 + kc + SLOT - 1) / SLOT;
        for (int i = 0; i < tr; i++) {
            int r = r0 + i;
            int ow = q.rowBase(r), ob = i * ld - c0;
            // Counters instead of a division per slot: group g ends at slot gEnd; slot t is field k of block blk.
            int g = t0 / spg, gEnd = Math.min((g + 1) * spg, t1), blk = t0 / spw, k = t0 % spw;
            for (int t = t0; t < t1; g++, gEnd = Math.min(gEnd + spg, t1)) {
                float s = q.scale(r, g);
                float b = -s * q.zero(r, g);
                for (; t < gEnd; t++) {
                    int wb = ow + blk * BLOCK, sh = k * bits;
                    for (int h = 0; h < SLOT; h += L) {
                        IntVector c = IntVector.fromArray(IS, w, wb + h).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, mask);
                        madd(c.convertShape(VectorOperators.I2F, FS, 0).reinterpretAsFloats(), FloatVector.broadcast(FS, s), FloatVector.broadcast(FS, b)).intoArray(buf, ob + t * SLOT + h);
                    }
                    if (++k == spw) {
                        k = 0;
                        blk++;
                    }
                }
            }
        }
    }
}
