package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels of the row-lane layout ({@link QuantizedMatrix.Layout#ROW_LANES}): the L lanes
 * of a vector are L rows (16 at 512 bits, 8 at 256, 4 at 128), so x is broadcast one column at a
 * time to the 4 L rows of a tile, a group's scales are one vector per L rows, and no row needs a
 * horizontal sum. Loaded only if VectorSupport.enabled().
 *
 * <p>On CPUs that multiply denormal operands at full speed ({@link #DENORMALS_FAST}; AMD Zen does,
 * many Intel cores take a microcode assist instead) codes are read as denormal floats instead of
 * being converted: a code c masked out at bit b of a word, read as float bits, is c * 2^(b - 149)
 * exactly; x is pre-scaled by 2^(X_EXP - b) ({@link #input}), so every product is
 * c * x * 2^(X_EXP - 149), exact before the FMA rounds it, and the row totals are scaled back by a
 * power of two at the end. Elsewhere the masked code is converted to float (exact below 2^24) and
 * x is pre-scaled by 2^-b: one more vector operation per L codes, the same sums.
 *
 * <p>Why the 2-bit kernel shifts each code to the bottom of its word (three vector operations per
 * 16 codes) instead of masking each code in place (two, with 8 constant masks): C2 keeps the 8
 * masks and the hoisted x broadcasts in stack slots and reloads them, and the in-place kernel ran
 * at 7.7-8.7 GB/s on 2 threads at 16384 x 16384 against 14.8 for the shifting one (bench medians,
 * same machine and hour). The 4-bit kernel has 4 masks and is faster masking in place (21-22
 * against 10-15 GB/s).
 *
 * <p>No method is ever called on a vector that a loop carries (the accumulators, the tile totals):
 * such vectors are only arguments. At a loop head C2 knows a carried vector only as the abstract
 * FloatVector or IntVector, so a call on it is inlined only through the call site's type profile,
 * and when C2 compiles the kernel before that profile is complete (it did in about one JVM in five
 * in {@code casp bench decode}) the call runs the API's Java fallback, which boxes every vector:
 * decode ran 6x slower for the whole run. Hence the shifts from the slot's words (fresh values)
 * rather than a word shifted by 2 in every column, the tile totals stored from inside the slot
 * loop, and {@code load.fma(acc, t)} rather than {@code acc.fma(load, t)}. The accumulators start
 * fresh in every slot: C2 also boxes a vector carried around two nested loops.
 */
final class RowLaneSimd {
    private RowLaneSimd() {}

    private static final VectorSpecies<Float> FS = VectorProbe.floatSpecies();
    private static final VectorSpecies<Integer> IS = VectorProbe.intSpecies();
    private static final int SLOT = QuantizedMatrix.SLOT;
    /** Rows per vector (16-row blocks at 512 bits, 8 at 256, 4 at 128) and per tile (four blocks). */
    static final int L = FS.length(), TILE = 4 * L;

    /**
     * Whether this CPU multiplies denormal operands at full speed, so that codes are read as
     * denormal floats; otherwise they are converted (one more vector operation per L codes).
     * -Dcasp.kernel.denormals=true|false overrides the start-up probe.
     */
    static final boolean DENORMALS_FAST = decideDenormals();

    private static boolean decideDenormals() {
        String forced = System.getProperty("casp.kernel.denormals");
        if (forced != null) return Boolean.parseBoolean(forced);
        return DenormalProbe.fast();
    }

    /** A code c at bit b reads as c * 2^(b + READ_EXP): reinterpreted as a denormal, or converted. */
    private static final int READ_EXP = DENORMALS_FAST ? -149 : 0;
    /** x is pre-scaled by 2^(X_EXP - b), so every product carries 2^(X_EXP + READ_EXP). */
    static final int X_EXP = DENORMALS_FAST ? 88 : 0;
    /** 2^-(X_EXP + READ_EXP): undoes the scale of the products. */
    private static final float PRODUCT_UNSCALE = Math.scalb(1f, -(X_EXP + READ_EXP));
    /**
     * Largest |x| taken as it is; larger inputs are scaled down by a power of two first (exact), so
     * only |x| far below the largest loses precision. Denormal reads: x * 2^X_EXP must stay finite,
     * with 8 bits of room. Converted reads: a product is code * x with codes up to 2^8, and a row
     * sums up to 2^20 of them, so |x| stays below 2^(127 - 8 - 20).
     */
    private static final float MAX_X = Math.scalb(1f, DENORMALS_FAST ? 127 - X_EXP - 8 : 127 - 8 - 20);

    /** Whether the kernels can run here: vectors of 4 or more float lanes and FMA. */
    static boolean usable() {
        return L >= 4 && VectorSupport.FMA;
    }

    /** The code masked out of words as a float: its bits reinterpreted (a denormal) or converted. */
    private static FloatVector read(IntVector masked) {
        return DENORMALS_FAST ? masked.reinterpretAsFloats() : (FloatVector) masked.convertShape(VectorOperators.I2F, FS, 0);
    }

    /**
     * The kernel's view of x: stored column j pre-scaled by 2^(X_EXP - k - b), b the bit at
     * which the kernel finds its code (0 for 2, 3 and 8 bits, which shift each code down; 4 (j mod 4)
     * for 4 bits, which masks it in its 16-bit half word), zero-padded to whole slots (at 3 bits,
     * laid out like the words: group g from 10 * wordsPerGroup * g); group sums of x at the
     * products' scale 2^(X_EXP + READ_EXP - k); and the power of two 2^k that x was scaled down by
     * (k = 0 unless max |x| >= {@link #MAX_X}).
     */
    static final class Input {
        float[] xq = new float[0];
        float[] groupSums = new float[0];
        int k;
        /** Factor of lane l of the pre-scaling; the period (1, or 4 at 4 bits) divides L. */
        private final float[] pattern = new float[L];
    }

    /** Fills in (its buffers reused, grown when too short) with the kernel's view of xs[xo, xo + cols). */
    static void input(QuantizedMatrix q, float[] xs, int xo, Input in) {
        int cols = q.cols;
        IntVector maxAbsBits = IntVector.zero(IS); // raw bits of |x|: ordered like the magnitudes, NaN above all
        int j = 0;
        for (; j + L <= cols; j += L) {
            maxAbsBits = maxAbsBits.max(FloatVector.fromArray(FS, xs, xo + j).reinterpretAsInts().lanewise(VectorOperators.AND, 0x7fffffff));
        }
        int maxBits = maxAbsBits.reduceLanes(VectorOperators.MAX);
        for (; j < cols; j++) maxBits = Math.max(maxBits, Float.floatToRawIntBits(xs[xo + j]) & 0x7fffffff);
        float maxAbs = Float.intBitsToFloat(maxBits);
        // Finite and too large: scale down (Inf and NaN propagate as they would in a float product).
        int k = Float.isFinite(maxAbs) && maxAbs >= MAX_X ? Math.getExponent(maxAbs) - Math.getExponent(MAX_X) + 1 : 0;
        // 2, 3 and 8 bits: every code is shifted to the bottom of its word; 4 bits: code u of a 16-bit half stays at bit 4u.
        int period = q.bits == 4 ? 4 : 1;
        float[] pattern = in.pattern;
        for (int l = 0; l < L; l++) pattern[l] = Math.scalb(1f, X_EXP - k - q.bits * (l % period));
        FloatVector pv = FloatVector.fromArray(FS, pattern, 0);
        int length = q.bits == 3 ? q.wordsPerRow * q.slotsPerWord : q.slots * SLOT;
        if (in.xq.length < length) in.xq = new float[length];
        float[] xq = in.xq;
        if (q.bits == 3) { // each group starts a word of 10 codes: x of group g from 10 * wordsPerGroup * g, zero pads between
            java.util.Arrays.fill(xq, 0, length, 0f);
            float f = pattern[0];
            for (int g = 0, c = 0; g < q.groups; g++, c += q.groupSize) {
                int n = Math.min(q.groupSize, cols - c), to = g * q.wordsPerGroup * q.slotsPerWord;
                for (int i = 0; i < n; i++) xq[to + i] = xs[xo + c + i] * f;
            }
        } else {
            for (j = 0; j + L <= cols; j += L) FloatVector.fromArray(FS, xs, xo + j).mul(pv).intoArray(xq, j);
            for (; j < cols; j++) xq[j] = xs[xo + j] * pattern[j % L];
            java.util.Arrays.fill(xq, cols, length, 0f);
        }
        if (in.groupSums.length < q.groups) in.groupSums = new float[q.groups];
        float[] sums = in.groupSums;
        float sumScale = Math.scalb(1f, X_EXP + READ_EXP - k);
        for (int g = 0, c = 0; g < q.groups; g++, c += q.groupSize) sums[g] = Blas1.sum(Math.min(q.groupSize, cols - c), xs, xo + c) * sumScale;
        in.k = k;
    }

    /** Each thread's tile totals. */
    private static final ThreadLocal<float[]> TILE_OUT = ThreadLocal.withInitial(() -> new float[TILE]);

    /** y[yOff + r] for the rows of tiles [tile0, tile1). */
    static void tiles(QuantizedMatrix q, int tile0, int tile1, Input in, float[] y, int yOff) {
        float[] out = TILE_OUT.get();
        for (int tile = tile0; tile < tile1; tile++) {
            if (q.bits == 2) tile2Bits(q, tile, in, out);
            else if (q.bits == 3) tile3Bits(q, tile, in, out);
            else if (q.bits == 4) tile4Bits(q, tile, in, out);
            else tile8Bits(q, tile, in, out);
            int r0 = tile * TILE;
            System.arraycopy(out, 0, y, yOff + r0, Math.min(TILE, q.rows - r0));
        }
    }

    /**
     * One tile of 2-bit codes: per slot (16 columns), the word of each row holds the 16 columns,
     * column u at bits 2u; every four columns the words are shifted down by 2u, then each column
     * takes a shift by 2k (k < 4, a constant once C2 unrolls the inner loop), an AND with 3 and an
     * FMA against the broadcast x (shared by the tile's four L-row blocks).
     */
    private static void tile2Bits(QuantizedMatrix q, int tile, Input in, float[] out) {
        final int[] w = q.words;
        final float[] side = q.side, xq = in.xq;
        final int slots = q.slots, spg = q.slotsPerGroup;
        final int base = q.tileBase(tile * TILE), sideBase = q.sideIndex(tile * TILE, 0);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        for (int s = 0, so = sideBase, inGroup = 0; s < slots; s++) {
            int wo = base + s * TILE, xo = s * SLOT;
            IntVector w0 = IntVector.fromArray(IS, w, wo), w1 = IntVector.fromArray(IS, w, wo + L);
            IntVector w2 = IntVector.fromArray(IS, w, wo + 2 * L), w3 = IntVector.fromArray(IS, w, wo + 3 * L);
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int u = 0; u < 16; u += 4) { // columns u .. u + 3 of the slot
                IntVector v0 = w0.lanewise(VectorOperators.LSHR, 2 * u), v1 = w1.lanewise(VectorOperators.LSHR, 2 * u);
                IntVector v2 = w2.lanewise(VectorOperators.LSHR, 2 * u), v3 = w3.lanewise(VectorOperators.LSHR, 2 * u);
                for (int k = 0; k < 4; k++) { // unrolled by C2: constant shifts
                    FloatVector xb = FloatVector.broadcast(FS, xq[xo + u + k]);
                    a0 = read(v0.lanewise(VectorOperators.LSHR, 2 * k).lanewise(VectorOperators.AND, 3)).fma(xb, a0);
                    a1 = read(v1.lanewise(VectorOperators.LSHR, 2 * k).lanewise(VectorOperators.AND, 3)).fma(xb, a1);
                    a2 = read(v2.lanewise(VectorOperators.LSHR, 2 * k).lanewise(VectorOperators.AND, 3)).fma(xb, a2);
                    a3 = read(v3.lanewise(VectorOperators.LSHR, 2 * k).lanewise(VectorOperators.AND, 3)).fma(xb, a3);
                }
            }
            t0 = FloatVector.fromArray(FS, side, so).fma(a0, t0);
            t1 = FloatVector.fromArray(FS, side, so + L).fma(a1, t1);
            t2 = FloatVector.fromArray(FS, side, so + 2 * L).fma(a2, t2);
            t3 = FloatVector.fromArray(FS, side, so + 3 * L).fma(a3, t3);
            if (s == slots - 1) { // stored from inside the loop, where t0..t3 are fresh values (see the class comment)
                t0.intoArray(out, 0);
                t1.intoArray(out, L);
                t2.intoArray(out, 2 * L);
                t3.intoArray(out, 3 * L);
            }
            if (++inGroup == spg) {
                inGroup = 0;
                so += 2 * TILE;
            }
        }
        finish(q, sideBase, in, out);
    }

    /**
     * One tile of 3-bit codes: as {@link #tile2Bits} with 10 codes per word, in two steps of 5
     * (shifts by 3k, AND 7); each group starts a new word, so every word belongs to one group (x
     * has zero pads to match).
     * A copy of the 2-bit kernel rather than one kernel with parameters: C2 unrolls the code loop
     * completely only when its trip count and the mask and shift are constants.
     */
    private static void tile3Bits(QuantizedMatrix q, int tile, Input in, float[] out) {
        final int[] w = q.words;
        final float[] side = q.side, xq = in.xq;
        final int words = q.wordsPerRow, wpg = q.wordsPerGroup;
        final int base = q.tileBase(tile * TILE), sideBase = q.sideIndex(tile * TILE, 0);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        for (int s = 0, so = sideBase, inGroup = 0; s < words; s++) {
            int wo = base + s * TILE, xo = s * 10;
            IntVector w0 = IntVector.fromArray(IS, w, wo), w1 = IntVector.fromArray(IS, w, wo + L);
            IntVector w2 = IntVector.fromArray(IS, w, wo + 2 * L), w3 = IntVector.fromArray(IS, w, wo + 3 * L);
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int u = 0; u < 10; u += 5) { // columns u .. u + 4 of the word
                IntVector v0 = w0.lanewise(VectorOperators.LSHR, 3 * u), v1 = w1.lanewise(VectorOperators.LSHR, 3 * u);
                IntVector v2 = w2.lanewise(VectorOperators.LSHR, 3 * u), v3 = w3.lanewise(VectorOperators.LSHR, 3 * u);
                for (int k = 0; k < 5; k++) { // unrolled by C2: constant shifts
                    FloatVector xb = FloatVector.broadcast(FS, xq[xo + u + k]);
                    a0 = read(v0.lanewise(VectorOperators.LSHR, 3 * k).lanewise(VectorOperators.AND, 7)).fma(xb, a0);
                    a1 = read(v1.lanewise(VectorOperators.LSHR, 3 * k).lanewise(VectorOperators.AND, 7)).fma(xb, a1);
                    a2 = read(v2.lanewise(VectorOperators.LSHR, 3 * k).lanewise(VectorOperators.AND, 7)).fma(xb, a2);
                    a3 = read(v3.lanewise(VectorOperators.LSHR, 3 * k).lanewise(VectorOperators.AND, 7)).fma(xb, a3);
                }
            }
            t0 = FloatVector.fromArray(FS, side, so).fma(a0, t0);
            t1 = FloatVector.fromArray(FS, side, so + L).fma(a1, t1);
            t2 = FloatVector.fromArray(FS, side, so + 2 * L).fma(a2, t2);
            t3 = FloatVector.fromArray(FS, side, so + 3 * L).fma(a3, t3);
            if (s == words - 1) { // stored from inside the loop, where t0..t3 are fresh values (see the class comment)
                t0.intoArray(out, 0);
                t1.intoArray(out, L);
                t2.intoArray(out, 2 * L);
                t3.intoArray(out, 3 * L);
            }
            if (++inGroup == wpg) {
                inGroup = 0;
                so += 2 * TILE;
            }
        }
        finish(q, sideBase, in, out);
    }

    /**
     * One tile of 4-bit codes: per slot, two words per row (columns 0-7 and 8-15), each with 4 codes
     * in its low half and 4 in its high half.
     */
    private static void tile4Bits(QuantizedMatrix q, int tile, Input in, float[] out) {
        final int[] w = q.words;
        final float[] side = q.side, xq = in.xq;
        final int slots = q.slots, spg = q.slotsPerGroup;
        final int base = q.tileBase(tile * TILE), sideBase = q.sideIndex(tile * TILE, 0);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        for (int s = 0, so = sideBase, inGroup = 0; s < slots; s++) {
            int wo = base + s * 2 * TILE, xo = s * SLOT;
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int quarter = 0; quarter < 4; quarter++) { // word quarter / 2, its low (even) or high (odd) 16 bits
                int o = wo + (quarter >> 1) * TILE, sh = (quarter & 1) << 4, xh = xo + 4 * quarter;
                IntVector w0 = IntVector.fromArray(IS, w, o).lanewise(VectorOperators.LSHR, sh);
                IntVector w1 = IntVector.fromArray(IS, w, o + L).lanewise(VectorOperators.LSHR, sh);
                IntVector w2 = IntVector.fromArray(IS, w, o + 2 * L).lanewise(VectorOperators.LSHR, sh);
                IntVector w3 = IntVector.fromArray(IS, w, o + 3 * L).lanewise(VectorOperators.LSHR, sh);
                for (int u = 0; u < 4; u++) { // code u of the half in place: (w & 15 << 4u) is code * 2^(4u - 149)
                    IntVector m = IntVector.broadcast(IS, 15 << (4 * u));
                    FloatVector xb = FloatVector.broadcast(FS, xq[xh + u]);
                    a0 = read(w0.lanewise(VectorOperators.AND, m)).fma(xb, a0);
                    a1 = read(w1.lanewise(VectorOperators.AND, m)).fma(xb, a1);
                    a2 = read(w2.lanewise(VectorOperators.AND, m)).fma(xb, a2);
                    a3 = read(w3.lanewise(VectorOperators.AND, m)).fma(xb, a3);
                }
            }
            t0 = FloatVector.fromArray(FS, side, so).fma(a0, t0);
            t1 = FloatVector.fromArray(FS, side, so + L).fma(a1, t1);
            t2 = FloatVector.fromArray(FS, side, so + 2 * L).fma(a2, t2);
            t3 = FloatVector.fromArray(FS, side, so + 3 * L).fma(a3, t3);
            if (s == slots - 1) { // stored from inside the loop, where t0..t3 are fresh values (see the class comment)
                t0.intoArray(out, 0);
                t1.intoArray(out, L);
                t2.intoArray(out, 2 * L);
                t3.intoArray(out, 3 * L);
            }
            if (++inGroup == spg) {
                inGroup = 0;
                so += 2 * TILE;
            }
        }
        finish(q, sideBase, in, out);
    }

    /**
     * One tile of 8-bit codes: per slot, four words per row (4 codes each); each column reloads its
     * word from L1 and shifts its byte down (load, shift, AND 255, FMA), so the slot is one loop
     * over 16 columns like the other widths.
     */
    private static void tile8Bits(QuantizedMatrix q, int tile, Input in, float[] out) {
        final int[] w = q.words;
        final float[] side = q.side, xq = in.xq;
        final int slots = q.slots, spg = q.slotsPerGroup;
        final int base = q.tileBase(tile * TILE), sideBase = q.sideIndex(tile * TILE, 0);
        FloatVector t0 = FloatVector.zero(FS), t1 = t0, t2 = t0, t3 = t0;
        for (int s = 0, so = sideBase, inGroup = 0; s < slots; s++) {
            int wo = base + s * 4 * TILE, xo = s * SLOT;
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int u = 0; u < 16; u++) {
                int o = wo + (u >> 2) * TILE, sh = (u & 3) << 3;
                FloatVector xb = FloatVector.broadcast(FS, xq[xo + u]);
                a0 = read(IntVector.fromArray(IS, w, o).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, 255)).fma(xb, a0);
                a1 = read(IntVector.fromArray(IS, w, o + L).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, 255)).fma(xb, a1);
                a2 = read(IntVector.fromArray(IS, w, o + 2 * L).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, 255)).fma(xb, a2);
                a3 = read(IntVector.fromArray(IS, w, o + 3 * L).lanewise(VectorOperators.LSHR, sh).lanewise(VectorOperators.AND, 255)).fma(xb, a3);
            }
            t0 = FloatVector.fromArray(FS, side, so).fma(a0, t0);
            t1 = FloatVector.fromArray(FS, side, so + L).fma(a1, t1);
            t2 = FloatVector.fromArray(FS, side, so + 2 * L).fma(a2, t2);
            t3 = FloatVector.fromArray(FS, side, so + 3 * L).fma(a3, t3);
            if (s == slots - 1) { // stored from inside the loop, where t0..t3 are fresh values (see the class comment)
                t0.intoArray(out, 0);
                t1.intoArray(out, L);
                t2.intoArray(out, 2 * L);
                t3.intoArray(out, 3 * L);
            }
            if (++inGroup == spg) {
                inGroup = 0;
                so += 2 * TILE;
            }
        }
        finish(q, sideBase, in, out);
    }

    /**
     * Subtracts the zero points (sum_g scale * zero * X_g, once per group rather than per code) from
     * the tile's totals in out and scales them back.
     */
    private static void finish(QuantizedMatrix q, int sideBase, Input in, float[] out) {
        final float[] side = q.side, sums = in.groupSums;
        float back = Math.scalb(1f, in.k); // applied apart from PRODUCT_UNSCALE: their product may overflow a float
        for (int b = 0; b < TILE; b += L) {
            FloatVector zeroTerm = FloatVector.zero(FS);
            for (int g = 0, so = sideBase + b; g < q.groups; g++, so += 2 * TILE) {
                FloatVector sz = FloatVector.fromArray(FS, side, so).mul(FloatVector.fromArray(FS, side, so + TILE));
                zeroTerm = sz.fma(FloatVector.broadcast(FS, sums[g]), zeroTerm);
            }
            FloatVector.fromArray(FS, out, b).sub(zeroTerm).mul(PRODUCT_UNSCALE).mul(back).intoArray(out, b);
        }
    }

    /**
     * W^T of rows [r0, r0 + tr) (r0 a multiple of L) and stored columns [c0, c0 + kc) into
     * buf [kc, ld]: buf[(j - c0) * ld + i] = W[r0 + i, j], one vector store per L rows and column.
     * Whole L-row blocks are written (padding rows of the last tile included), so ld must be at
     * least tr rounded up to L.
     */
    static void dequantizeTileTransposed(QuantizedMatrix q, int r0, int tr, int c0, int kc, float[] buf, int ld) {
        final int[] w = q.words;
        final float[] side = q.side;
        final int bits = q.bits, mask = (1 << bits) - 1, gs = q.groupSize;
        for (int i = 0; i < tr; i += L) {
            int r = r0 + i;
            for (int j = c0; j < c0 + kc; ) {
                int g = j / gs, jEnd = Math.min(c0 + kc, (g + 1) * gs);
                int so = q.sideIndex(r, g);
                FloatVector sv = FloatVector.fromArray(FS, side, so);
                FloatVector bv = sv.mul(FloatVector.fromArray(FS, side, so + TILE)).neg();
                for (; j < jEnd; j++) {
                    IntVector c = IntVector.fromArray(IS, w, q.wordIndex(r, j)).lanewise(VectorOperators.LSHR, q.shift(j))
                            .lanewise(VectorOperators.AND, mask);
                    ((FloatVector) c.convertShape(VectorOperators.I2F, FS, 0)).fma(sv, bv).intoArray(buf, (j - c0) * ld + i);
                }
            }
        }
    }
}
