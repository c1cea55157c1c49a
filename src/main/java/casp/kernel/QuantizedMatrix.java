package casp.kernel;

/**
 * A weight matrix W [rows = out, cols = in] of 2, 3, 4 or 8-bit codes with a float scale and
 * zero point per (row, group of inputs), W[r, c] = scale[r, g(c)] * (code[r, c] - zero[r, g(c)]),
 * in a row-major layout made for the dequantizing kernels ({@link #matvec}, {@link #matmul}).
 *
 * <p>Inputs are stored in an order given by an optional permutation (GPTQ act-order models: stored
 * column j is input perm[j], so every group is a contiguous run of stored columns). Groups are a
 * multiple of 16 columns or the whole row. Padding codes are zero. Two layouts (in memory only):
 *
 * <p>Row-lane layout ({@link Layout#ROW_LANES}, wherever the Vector API runs with FMA): a word
 * holds 32 / bits consecutive columns of one row (10 at 3 bits, the top 2 bits unused), code of
 * column j at bits [(j mod (32 / bits)) * bits, ...), and the L = {@link #LANES} lanes of a vector
 * (16 at 512 bits, 8 at 256, 4 at 128; fixed per JVM) are L consecutive rows. Rows come in tiles of
 * 4 L (padded with zero codes). At 2, 4 and 8 bits columns come in slots of 16 and words are ordered
 * [tile][slot][word of the slot (bits / 2)][row in tile]; at 3 bits each group starts a new word (a
 * group of 128 is 13 words, its last one holding 8 codes and 2 zero pads), [tile][group][word][row
 * in tile]. So the mat-vec of one tile streams its codes sequentially, broadcasts each x once for
 * the tile's rows and applies a group's scales as one vector per L rows. Scales and zeros are
 * [tile][group][4 L scales, 4 L zeros].
 *
 * <p>Slot layout ({@link Layout#SLOTS}, for scalar code, and for tests as an independent second
 * addressing of the same matrix): each row's stored columns are cut into "slots" of 16 consecutive
 * columns; a block of 16 int32 words holds 32 / bits slots: column 16 t + i (slot t, lane i) is at
 * bits [k * bits, (k + 1) * bits) of word i of block t / (32 / bits), with k = t mod (32 / bits).
 * Rows come in quads (padded with zero codes), block b of the 4 rows of a quad next to each other,
 * [quad][block][row in quad][16 words]; scales and zeros [quad][group][4 scales, 4 zeros].
 */
public final class QuantizedMatrix {
    /** Words per block = columns per slot. */
    static final int SLOT = 16;
    /** Rows interleaved block by block. */
    static final int QUAD = 4;
    /** Words from one block of a row to its next block (the quad's other rows sit between). */
    static final int BLOCK = QUAD * SLOT;
    /** Row-lane layout: rows per vector (one block: 16 at 512 bits, 8 at 256, 4 at 128) and per tile (four blocks). */
    static final int LANES = DequantKernels.rowLanes(), TILE = 4 * LANES;

    /** How the codes are laid out in {@link #words}; in memory only (files hold GPTQ tensors). */
    enum Layout {
        /** Slots of 16 columns, rows in quads: the layout of the scalar kernels. */
        SLOTS,
        /** Lanes = rows, tiles of four vectors of rows: the layout of the vector kernels (needs the Vector API with FMA). */
        ROW_LANES;

        /**
         * The layout the kernels of this JVM run on. {@code -Dcasp.matvec.slots=true} forces the
         * slot layout, whose mat-vec is the scalar loop: a known slowdown of exactly the mat-vec,
         * which the regression gate's own check switches on (docs/benchmarks.md).
         */
        static Layout preferred() {
            return DequantKernels.ROW_LANES_USABLE && !FORCE_SLOTS ? ROW_LANES : SLOTS;
        }

        private static final boolean FORCE_SLOTS = Boolean.getBoolean("casp.matvec.slots");
    }

    final int rows, cols, bits, groupSize, groups;
    /** Slots per word (32 / bits, 10 for 3 bits), slots per row, words per row, slots per group. */
    final int slotsPerWord, slots, wordsPerRow, slotsPerGroup;
    /** Row-lane layout at 3 bits: words per group (each group starts a word); 0 otherwise. */
    final int wordsPerGroup;
    /** True for {@link Layout#ROW_LANES}, false for {@link Layout#SLOTS}. */
    final boolean rowLanes;
    /** Codes: [rows padded to 4, wordsPerRow] in the slot layout, or tiles of {@link #TILE} rows in the row-lane layout. */
    final int[] words;
    /**
     * Scales and zero points, the rows of a quad (tile) interleaved group by group:
     * [quad][group][4 scales, 4 zeros] or [tile][group][TILE scales, TILE zeros] (see {@link #sideIndex}),
     * so the kernels read one sequential stream of side information beside the codes.
     */
    final float[] side;
    /** Offset of a zero point from its scale in {@link #side} (QUAD or TILE; groups are 2 * zeroOffset apart). */
    final int zeroOffset;
    /** Stored column j holds input perm[j]; null for the identity. */
    final int[] perm;

    private QuantizedMatrix(int rows, int cols, int bits, int groupSize, int[] perm, Layout layout) {
        GptqPacking.checkBits(bits);
        if (layout == Layout.ROW_LANES && !DequantKernels.ROW_LANES_USABLE) {
            throw new IllegalArgumentException("the row-lane layout needs the Vector API with FMA");
        }
        if (rows < 0 || cols <= 0) throw new IllegalArgumentException("bad shape rows=" + rows + " cols=" + cols);
        if (groupSize <= 0 || groupSize >= cols) groupSize = cols;
        else if (groupSize % SLOT != 0) {
            throw new IllegalArgumentException("group size must be a multiple of " + SLOT + " or cover the row, got " + groupSize);
        }
        this.rows = rows;
        this.cols = cols;
        this.bits = bits;
        this.groupSize = groupSize;
        this.groups = (cols + groupSize - 1) / groupSize;
        this.slotsPerWord = 32 / bits;
        this.slots = (cols + SLOT - 1) / SLOT;
        this.rowLanes = layout == Layout.ROW_LANES;
        int blocks = (slots + slotsPerWord - 1) / slotsPerWord;
        this.slotsPerGroup = groups == 1 ? slots : groupSize / SLOT;
        if (rowLanes && bits == 3) {
            this.wordsPerGroup = (this.groupSize + slotsPerWord - 1) / slotsPerWord;
            int lastGroupCols = cols - (groups - 1) * this.groupSize;
            this.wordsPerRow = (groups - 1) * wordsPerGroup + (lastGroupCols + slotsPerWord - 1) / slotsPerWord;
        } else {
            this.wordsPerGroup = 0;
            this.wordsPerRow = rowLanes ? slots * (bits / 2) : blocks * SLOT;
        }
        int rowUnit = rowLanes ? TILE : QUAD;
        long paddedRows = (rows + rowUnit - 1) / rowUnit * (long) rowUnit;
        if (paddedRows * wordsPerRow > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("matrix too large for one array");
        this.words = new int[(int) paddedRows * wordsPerRow];
        this.side = new float[(int) (paddedRows / rowUnit) * groups * 2 * rowUnit];
        this.zeroOffset = rowUnit;
        this.perm = perm;
    }

    /**
     * Builds the matrix from codes [rows, cols] (values in [0, 2^bits)), scales and zero points
     * [rows, groups] with groups = ceil(cols / groupSize). groupSize <= 0 or >= cols means one group
     * per row; otherwise it must be a multiple of 16.
     */
    public static QuantizedMatrix fromCodes(int rows, int cols, int bits, int groupSize,
                                            int[] codes, float[] scales, float[] zeros) {
        return fromCodes(rows, cols, bits, groupSize, codes, scales, zeros, null);
    }

    /**
     * As {@link #fromCodes(int, int, int, int, int[], float[], float[])} for an input order given by
     * perm: codes, and the groups, refer to stored columns, stored column j being input perm[j]
     * (so group g is made of inputs perm[g * groupSize ...]). perm null means the identity.
     */
    public static QuantizedMatrix fromCodes(int rows, int cols, int bits, int groupSize,
                                            int[] codes, float[] scales, float[] zeros, int[] perm) {
        return fromCodes(rows, cols, bits, groupSize, codes, scales, zeros, perm, Layout.preferred());
    }

    /** As {@link #fromCodes(int, int, int, int, int[], float[], float[], int[])} in a given layout (tests compare them). */
    static QuantizedMatrix fromCodes(int rows, int cols, int bits, int groupSize,
                                     int[] codes, float[] scales, float[] zeros, int[] perm, Layout layout) {
        if (perm != null) checkPermutation(perm, cols);
        QuantizedMatrix q = new QuantizedMatrix(rows, cols, bits, groupSize, perm == null ? null : perm.clone(), layout);
        if (codes.length < (long) rows * cols) throw new IllegalArgumentException("codes has " + codes.length + " entries, need " + (long) rows * cols);
        if (scales.length < (long) rows * q.groups || zeros.length < (long) rows * q.groups) {
            throw new IllegalArgumentException("scales and zeros need " + (long) rows * q.groups + " entries ([rows, groups])");
        }
        int maxq = (1 << bits) - 1;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int v = codes[r * cols + c];
                if (v < 0 || v > maxq) throw new IllegalArgumentException("code " + v + " at [" + r + ", " + c + "] does not fit in " + bits + " bits");
                q.words[q.wordIndex(r, c)] |= v << q.shift(c);
            }
        }
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < q.groups; g++) q.setSide(r, g, scales[r * q.groups + g], zeros[r * q.groups + g]);
        }
        return q;
    }

    /**
     * A matrix of uniformly random codes, scales in [0.01, 0.11) and integer zero points in
     * [1, 2^bits], for benchmarks and tests; built directly in the packed layout (no int per code),
     * so it is cheap even for 16384 x 16384.
     */
    public static QuantizedMatrix random(int rows, int cols, int bits, int groupSize, long seed) {
        return random(rows, cols, bits, groupSize, seed, Layout.preferred());
    }

    /** As {@link #random(int, int, int, int, long)} in a given layout (the codes differ by layout). */
    static QuantizedMatrix random(int rows, int cols, int bits, int groupSize, long seed, Layout layout) {
        QuantizedMatrix q = new QuantizedMatrix(rows, cols, bits, groupSize, null, layout);
        int wpr = q.wordsPerRow;
        int usedMask = bits == 3 ? 0x3FFFFFFF : -1; // 3 bits: 10 codes per word, top 2 bits unused
        int padTo = q.rowLanes ? (bits == 3 ? cols : q.slots * SLOT) : (wpr / SLOT) * SLOT * q.slotsPerWord; // columns the words can hold
        int tasks = Math.max(1, Math.min(rows, Parallel.threads() * 4));
        Parallel.forRange(tasks, t -> {
            for (int r = t; r < rows; r += tasks) {
                java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed * 0x9E3779B97F4A7C15L + r);
                if (q.rowLanes && bits == 3) { // every word, then the pads of each group's last word cleared
                    for (int k = 0, o = q.tileBase(r) + r % TILE; k < wpr; k++, o += TILE) q.words[o] = rnd.nextInt() & usedMask;
                    for (int g = 0; g < q.groups; g++) {
                        int n = Math.min(q.groupSize, cols - g * q.groupSize), last = (n - 1) / q.slotsPerWord;
                        int valid = n - last * q.slotsPerWord;
                        q.words[q.tileBase(r) + (g * q.wordsPerGroup + last) * TILE + r % TILE] &= (1 << (bits * valid)) - 1;
                    }
                } else if (q.rowLanes) {
                    for (int j = 0; j < cols; j += q.slotsPerWord) q.words[q.wordIndex(r, j)] = rnd.nextInt();
                } else {
                    for (int b = 0, o = q.rowBase(r); b < wpr / SLOT; b++, o += BLOCK) {
                        for (int i = o; i < o + SLOT; i++) q.words[i] = rnd.nextInt() & usedMask;
                    }
                }
                for (int j = cols; j < padTo; j++) { // padding codes must be zero
                    q.words[q.wordIndex(r, j)] &= ~(((1 << bits) - 1) << q.shift(j));
                }
                for (int g = 0; g < q.groups; g++) {
                    float sc = (float) (0.01 + 0.1 * rnd.nextDouble());
                    q.setSide(r, g, sc, 1 + rnd.nextInt(1 << bits));
                }
            }
        });
        return q;
    }

    /**
     * Reads a GPTQ v1 layer (see {@link GptqPacking}): qweight [in*bits/32, out], qzeros
     * [groups, out*bits/32], scales fp16 [groups, out], gIdx [in] (null for sequential groups of
     * groupSize; ignored groupSize otherwise). Act-order g_idx become an input permutation.
     */
    public static QuantizedMatrix fromGptq(int[] qweight, int[] qzeros, short[] scalesFp16, int[] gIdx,
                                           int in, int out, int bits, int groupSize) {
        GptqPacking.checkBits(bits);
        if (gIdx == null) gIdx = GptqPacking.sequentialGroupIndex(in, groupSize <= 0 ? in : groupSize);
        if (gIdx.length != in) throw new IllegalArgumentException("g_idx has " + gIdx.length + " entries, in=" + in);
        int groups = 0;
        for (int c = 0; c < in; c++) {
            if (gIdx[c] < 0) throw new IllegalArgumentException("negative g_idx at " + c);
            groups = Math.max(groups, gIdx[c] + 1);
        }
        if (scalesFp16.length < (long) groups * out) throw new IllegalArgumentException("scales need [" + groups + ", " + out + "]");
        // Stable sort of the inputs by group: identity for sequential g_idx.
        int[] count = new int[groups + 1];
        for (int c = 0; c < in; c++) count[gIdx[c] + 1]++;
        int gs = count[1];
        for (int g = 1; g <= groups; g++) {
            if (count[g] == 0 || count[g] > gs || (g < groups && count[g] != gs)) {
                throw new IllegalArgumentException("g_idx groups are not of one size (group " + (g - 1) + " has " + count[g] + " inputs)");
            }
        }
        for (int g = 1; g <= groups; g++) count[g] += count[g - 1];
        int[] perm = new int[in];
        boolean identity = true;
        for (int c = 0; c < in; c++) {
            int j = count[gIdx[c]]++;
            perm[j] = c;
            identity &= j == c;
        }
        int[] codes = GptqPacking.unpackQweight(qweight, in, out, bits);
        int[] stored = codes;
        if (!identity) {
            stored = new int[in * out];
            for (int r = 0; r < out; r++) {
                for (int j = 0; j < in; j++) stored[r * in + j] = codes[r * in + perm[j]];
            }
        }
        int[] z = GptqPacking.unpackQzeros(qzeros, groups, out, bits);
        float[] sc = new float[out * groups], ze = new float[out * groups];
        for (int g = 0; g < groups; g++) {
            for (int r = 0; r < out; r++) {
                sc[r * groups + g] = Fp16.toFloat(scalesFp16[g * out + r]);
                ze[r * groups + g] = z[g * out + r];
            }
        }
        return fromCodes(out, in, bits, groups == 1 ? in : gs, stored, sc, ze, identity ? null : perm);
    }

    /**
     * Writes the GPTQ v1 tensors of this matrix. Zero points must be integers in [0, 2^bits)
     * (0 only GPTQModel-family readers take right; see {@link GptqPacking#encodeZeros}); scales are rounded to fp16, so quantize with fp16-representable scales
     * if the file must reproduce this matrix exactly.
     */
    public GptqPacking.Tensors toGptq() {
        int maxq = (1 << bits) - 1;
        int[] codes = new int[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) codes[r * cols + input(j)] = storedCode(r, j);
        }
        int[] z = new int[groups * rows];
        short[] sc = new short[groups * rows];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groups; g++) {
                float zf = zero(r, g);
                if (zf != Math.rint(zf) || zf < 0 || zf > maxq) {
                    throw new IllegalArgumentException("zero point " + zf + " at row " + r + ", group " + g + " cannot be stored in GPTQ v1");
                }
                z[g * rows + r] = (int) zf;
                sc[g * rows + r] = Fp16.fromFloat(scale(r, g));
            }
        }
        int[] gIdx = new int[cols];
        for (int j = 0; j < cols; j++) gIdx[input(j)] = j / groupSize;
        return new GptqPacking.Tensors(cols, rows, bits,
                GptqPacking.packQweight(codes, cols, rows, bits),
                GptqPacking.packQzeros(z, groups, rows, bits), sc, gIdx);
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public int bits() {
        return bits;
    }

    /** Inputs per group (cols when the whole row is one group). */
    public int groupSize() {
        return groupSize;
    }

    public int groups() {
        return groups;
    }

    /** Bytes of packed codes (what a mat-vec streams, besides scales and zeros; row padding not counted). */
    public long packedBytes() {
        return 4L * rows * wordsPerRow;
    }

    /** Bytes of the float scales and zero points. */
    public long scaleBytes() {
        return 8L * rows * groups;
    }

    /** Input index of stored column j. */
    public int input(int j) {
        return perm == null ? j : perm[j];
    }

    /** Code at row r, stored column j. */
    public int storedCode(int r, int j) {
        return (words[wordIndex(r, j)] >>> shift(j)) & ((1 << bits) - 1);
    }

    /** Scale of row r, group g. */
    public float scale(int r, int g) {
        return side[sideIndex(r, g)];
    }

    /** Zero point of row r, group g. */
    public float zero(int r, int g) {
        return side[sideIndex(r, g) + zeroOffset];
    }

    /** The dense W [rows, cols] in input order (for tests and small layers only). */
    public float[] dequantize() {
        float[] w = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                int g = j / groupSize;
                w[r * cols + input(j)] = scale(r, g) * (storedCode(r, j) - zero(r, g));
            }
        }
        return w;
    }

    /**
     * The name of the mat-vec kernel this matrix takes on this machine for inputs of ordinary size
     * (e.g. "simd-2bit-row-lanes", "simd-4bit-row-lanes-converting", "scalar"); for benchmark reports.
     */
    public String matvecKernel() {
        return DequantKernels.matvecKernel(this);
    }

    /** y[yOff + r] = sum_c W[r, c] x[xOff + c] for every row r, never forming W. */
    public void matvec(float[] x, int xOff, float[] y, int yOff) {
        DequantKernels.matvec(this, x, xOff, y, yOff);
    }

    /**
     * Y = X W^T: x is [tokens, cols] from xOff, y is [tokens, rows] from yOff (row-major). Few
     * tokens stream the codes once per token through the fused mat-vec; more dequantize a tile of
     * W at a time into a small buffer and multiply it with the GEMM kernel.
     */
    public void matmul(float[] x, int xOff, int tokens, float[] y, int yOff) {
        DequantKernels.matmul(this, x, xOff, tokens, y, yOff);
    }

    /** Index in {@link #side} of the scale of row r, group g; its zero point is QUAD (TILE) further. */
    int sideIndex(int r, int g) {
        if (rowLanes) return ((r / TILE) * groups + g) * 2 * TILE + r % TILE;
        return ((r / QUAD) * groups + g) * 2 * QUAD + r % QUAD;
    }

    private void setSide(int r, int g, float scale, float zero) {
        int o = sideIndex(r, g);
        side[o] = scale;
        side[o + zeroOffset] = zero;
    }

    /** Slot layout: index of word 0 of row r's block 0. */
    int rowBase(int r) {
        return (r / QUAD) * QUAD * wordsPerRow + (r % QUAD) * SLOT;
    }

    /** Row-lane layout: index of the first word of tile (r / 64), i.e. of its slot 0. */
    int tileBase(int r) {
        return (r / TILE) * TILE * wordsPerRow;
    }

    int wordIndex(int r, int j) {
        if (rowLanes && bits == 3) {
            int g = j / groupSize, c = j - g * groupSize;
            return tileBase(r) + (g * wordsPerGroup + c / slotsPerWord) * TILE + r % TILE;
        }
        if (rowLanes) {
            int wordInSlot = (j % SLOT) / slotsPerWord, rowInTile = r % TILE;
            return tileBase(r) + ((j / SLOT * (bits / 2) + wordInSlot) * TILE) + rowInTile;
        }
        int t = j / SLOT;
        return rowBase(r) + (t / slotsPerWord) * BLOCK + (j % SLOT);
    }

    int shift(int j) {
        if (rowLanes && bits == 3) return (j % groupSize % slotsPerWord) * bits;
        if (rowLanes) return (j % slotsPerWord) * bits;
        return (j / SLOT % slotsPerWord) * bits;
    }

    private static void checkPermutation(int[] perm, int n) {
        if (perm.length != n) throw new IllegalArgumentException("permutation has " + perm.length + " entries, need " + n);
        boolean[] seen = new boolean[n];
        for (int p : perm) {
            if (p < 0 || p >= n || seen[p]) throw new IllegalArgumentException("not a permutation of 0.." + (n - 1));
            seen[p] = true;
        }
    }
}
