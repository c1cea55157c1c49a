package casp.io;

import it.unimi.dsi.fastutil.ints.IntArrayList;
import it.unimi.dsi.fastutil.longs.Long2LongOpenHashMap;
import it.unimi.dsi.fastutil.longs.LongHeapPriorityQueue;
import it.unimi.dsi.fastutil.objects.Object2IntOpenHashMap;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of a tokenizer.json: turns one pre-tokenized piece into ids. The piece starts as
 * one symbol per character (characters missing from the vocabulary become their UTF-8 bytes as
 * {@code <0xNN>} tokens when byte_fallback is on, else the unknown token); then the adjacent pair
 * with the lowest merge rank is merged, leftmost first, until no pair has a merge. That is the
 * rule of Hugging Face tokenizers and of SentencePiece BPE.
 */
final class BpeModel {
    private final Object2IntOpenHashMap<String> vocab;
    /** (left id << 32 | right id) -> (rank << 32 | merged id); -1 when the pair has no merge. */
    private final Long2LongOpenHashMap merges;
    private final int unkId;
    private final boolean byteFallback;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final String continuingPrefix;
    private final String endOfWordSuffix;
    /** Ids of the {@code <0xNN>} tokens, or -1 where absent. */
    private final int[] byteIds = new int[256];

    /** Pieces seen before; bounded so that a long run cannot grow it without limit. */
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();
    private static final int CACHE_LIMIT = 50_000;
    private static final int CACHE_MAX_PIECE = 256;

    BpeModel(Object2IntOpenHashMap<String> vocab, Long2LongOpenHashMap merges, int unkId, boolean byteFallback,
             boolean fuseUnk, boolean ignoreMerges, String continuingPrefix, String endOfWordSuffix) {
        this.vocab = vocab;
        this.merges = merges;
        this.unkId = unkId;
        this.byteFallback = byteFallback;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        this.continuingPrefix = continuingPrefix == null ? "" : continuingPrefix;
        this.endOfWordSuffix = endOfWordSuffix == null ? "" : endOfWordSuffix;
        for (int b = 0; b < 256; b++) byteIds[b] = vocab.getOrDefault(String.format("<0x%02X>", b), -1);
    }

    static long pairKey(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    /** Appends the ids of one piece to out. */
    void tokenize(String piece, IntArrayList out) {
        if (piece.isEmpty()) return;
        boolean cacheable = piece.length() <= CACHE_MAX_PIECE;
        if (cacheable) {
            int[] hit = cache.get(piece);
            if (hit != null) {
                out.addElements(out.size(), hit);
                return;
            }
        }
        int[] ids = merge(piece);
        if (cacheable) {
            if (cache.size() >= CACHE_LIMIT) cache.clear();
            cache.put(piece, ids);
        }
        out.addElements(out.size(), ids);
    }

    private int[] merge(String piece) {
        if (ignoreMerges) {
            int whole = vocab.getOrDefault(piece, -1);
            if (whole >= 0) return new int[]{whole};
        }
        // One symbol per character (code point), with byte fallback / unknown handling.
        IntArrayList syms = new IntArrayList(piece.length());
        boolean lastWasUnk = false;
        int n = piece.length();
        for (int i = 0; i < n; ) {
            int cp = piece.codePointAt(i);
            int next = i + Character.charCount(cp);
            String ch = piece.substring(i, next);
            String key = (i > 0 ? continuingPrefix : "") + ch + (next == n ? endOfWordSuffix : "");
            int id = vocab.getOrDefault(key, -1);
            if (id >= 0) {
                syms.add(id);
                lastWasUnk = false;
            } else if (byteFallback && addBytes(ch, syms)) {
                lastWasUnk = false;
            } else if (unkId >= 0) {
                if (!(fuseUnk && lastWasUnk)) syms.add(unkId);
                lastWasUnk = true;
            }
            // No unknown token configured: the character is dropped, as Hugging Face does.
            i = next;
        }
        int count = syms.size();
        int[] id = syms.toIntArray();
        if (count < 2) return id;
        int[] prev = new int[count];
        int[] nxt = new int[count];
        boolean[] dead = new boolean[count];
        // Heap entries are (rank << 32 | position): lowest rank first, then leftmost.
        LongHeapPriorityQueue heap = new LongHeapPriorityQueue(count);
        for (int i = 0; i < count; i++) {
            prev[i] = i - 1;
            nxt[i] = i + 1 < count ? i + 1 : -1;
            if (i + 1 < count) push(heap, id[i], id[i + 1], i);
        }
        while (!heap.isEmpty()) {
            long e = heap.dequeueLong();
            int pos = (int) e;
            int rank = (int) (e >>> 32);
            if (dead[pos]) continue;
            int right = nxt[pos];
            if (right < 0) continue;
            long m = merges.get(pairKey(id[pos], id[right]));
            // Stale entry: the pair at pos changed since it was queued.
            if (m == -1 || (int) (m >>> 32) != rank) continue;
            id[pos] = (int) m;
            dead[right] = true;
            nxt[pos] = nxt[right];
            if (nxt[pos] >= 0) prev[nxt[pos]] = pos;
            if (prev[pos] >= 0) push(heap, id[prev[pos]], id[pos], prev[pos]);
            if (nxt[pos] >= 0) push(heap, id[pos], id[nxt[pos]], pos);
        }
        IntArrayList result = new IntArrayList(count);
        for (int i = 0; i >= 0; i = nxt[i]) result.add(id[i]);
        return result.toIntArray();
    }

    private void push(LongHeapPriorityQueue heap, int left, int right, int pos) {
        long m = merges.get(pairKey(left, right));
        if (m != -1) heap.enqueue(((m >>> 32) << 32) | pos);
    }

    /** Adds the byte tokens of a character; false (and adds nothing) if one is missing. */
    private boolean addBytes(String ch, IntArrayList syms) {
        byte[] bytes = ch.getBytes(StandardCharsets.UTF_8);
        for (byte b : bytes) if (byteIds[b & 0xFF] < 0) return false;
        for (byte b : bytes) syms.add(byteIds[b & 0xFF]);
        return true;
    }
}
