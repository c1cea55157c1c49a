package casp.model;

/**
 * Keys and values of the positions seen so far, for every decoder layer, so that decoding one
 * token costs one row of work instead of a whole prefill. Stored transposed per kv head,
 * [headDim, capacity]: feature i of all positions is contiguous, so attention runs long vector
 * loops over positions even for small heads.
 */
public final class KvCache {
    /** One decoder layer's keys and values: feature i of kv head g at position pos is k/v[(g * headDim + i) * capacity + pos]. */
    public static final class Layer {
        final float[] k, v;
        final int capacity, kvHeads, headDim;

        public Layer(int kvHeads, int headDim, int capacity) {
            long n = (long) kvHeads * headDim * capacity;
            if (n > Integer.MAX_VALUE - 8)
                throw new IllegalArgumentException("KV cache layer of " + n + " values does not fit one array; use fewer positions");
            this.k = new float[(int) n];
            this.v = new float[(int) n];
            this.capacity = capacity;
            this.kvHeads = kvHeads;
            this.headDim = headDim;
        }

        public int capacity() { return capacity; }

        /** Offset of (kv head g, feature i, position pos) in {@link #keys()} and {@link #values()}. */
        public int offset(int g, int i, int pos) { return (g * headDim + i) * capacity + pos; }

        public float[] keys() { return k; }

        public float[] values() { return v; }
    }

    private final Layer[] layers;
    private final int capacity;
    private int length;

    public KvCache(int numLayers, int kvHeads, int headDim, int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("KV cache capacity must be positive, got " + capacity);
        this.capacity = capacity;
        this.layers = new Layer[numLayers];
        for (int i = 0; i < numLayers; i++) layers[i] = new Layer(kvHeads, headDim, capacity);
    }

    public Layer layer(int i) { return layers[i]; }

    public int numLayers() { return layers.length; }

    /** Maximum number of positions. */
    public int capacity() { return capacity; }

    /** Number of positions filled (the next token's position). */
    public int length() { return length; }

    /** Forgets all positions (the buffers are reused). */
    public void reset() { length = 0; }

    /**
     * Marks n more positions as filled. {@link LlamaModel} calls it after a forward pass; a caller
     * that runs {@link DecoderLayer}s one at a time on a cache calls it after the last layer.
     */
    public void advance(int n) {
        if (n < 0 || length + n > capacity)
            throw new IllegalStateException("KV cache: " + length + " + " + n + " positions exceed capacity " + capacity);
        length += n;
    }
}
