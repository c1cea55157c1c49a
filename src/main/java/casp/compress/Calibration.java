package casp.compress;

import casp.io.BadInputException;
import casp.io.LlavaDataset;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import casp.model.LlavaModel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Calibration data for the sequential compressor: a list of samples, each the input embeddings
 * [T, hidden] of one sequence (float32, row-major), i.e. what the first decoder layer reads. A
 * text model's samples are token embeddings; a LLaVA model's have the image features merged in,
 * so the compressor does not need to know where the rows came from.
 *
 * <p>Sources: {@link #fromTextFile} (random windows of a text), {@link #fromLlava} (LLaVA
 * conversations with their images).
 *
 * <p>The samples live in an {@link ActivationStore} (float32 or bfloat16, in memory or partly in a
 * scratch file); the compressor reads each one, runs a block on it and writes it back, so after
 * every block the samples hold that block's outputs and a Calibration is used once. Close it to
 * remove its scratch file.
 */
public final class Calibration implements AutoCloseable {
    /** One sequence: {@code tokens} rows of {@code hidden} floats. */
    public record Sample(float[] hidden, int tokens) {}

    private final ActivationStore store;
    /** LLaVA: seconds in the vision tower and projector, and the distinct images encoded. */
    private double visionSeconds;
    private int images;

    /** Wraps the samples (not copied) as float32 in memory; every array must hold tokens * hidden floats. */
    public Calibration(int hidden, List<Sample> samples) {
        this(storeOf(hidden, samples));
    }

    /** Wraps a store of samples. */
    public Calibration(ActivationStore store) {
        if (store.size() == 0) throw new IllegalArgumentException("calibration needs at least one sample");
        this.store = store;
    }

    private static ActivationStore storeOf(int hidden, List<Sample> samples) {
        ActivationStore s = new ActivationStore(hidden, ActivationStore.Settings.inMemory());
        for (Sample x : samples) {
            if (x.tokens() < 1 || x.hidden().length != (long) x.tokens() * hidden)
                throw new IllegalArgumentException("sample of " + x.tokens() + " tokens has " + x.hidden().length
                        + " values, expected tokens x " + hidden);
            s.add(x.hidden(), x.tokens());
        }
        return s;
    }

    public int hidden() { return store.hidden(); }

    public int size() { return store.size(); }

    /** Where the samples live. */
    public ActivationStore store() { return store; }

    /**
     * Sample i: its live array when the samples are float32 in memory, else a copy (changes to a
     * copy are not kept; use {@link ActivationStore#write}).
     */
    public Sample sample(int i) {
        float[] x = store.load(i, new float[store.length(i)]);
        return new Sample(x, store.tokens(i));
    }

    /** Tokens over all samples (the N of H = 2/N sum x x^T). */
    public long tokens() {
        long n = 0;
        for (int i = 0; i < store.size(); i++) n += store.tokens(i);
        return n;
    }

    /** Bytes of activation storage (tokens * hidden * 4 for float32, * 2 for bfloat16), in memory and spilled. */
    public long bytes() {
        return store.bytes();
    }

    /** Seconds the vision tower and projector took to encode the calibration images (0 for text). */
    public double visionSeconds() { return visionSeconds; }

    /** Distinct images the vision tower encoded. */
    public int images() { return images; }

    /** Removes the scratch file, if any. */
    @Override
    public void close() {
        store.close();
    }

    /**
     * Text calibration: the file is read as UTF-8 and encoded once; {@code count} windows of
     * {@code seqLen} tokens are cut from the stream ({@link #textWindows}) and embedded.
     */
    public static Calibration fromTextFile(LlamaModel model, Tokenizer tokenizer, Path file, int count, int seqLen, long seed) {
        return fromTextFile(model, tokenizer, file, count, seqLen, seed, ActivationStore.Settings.inMemory());
    }

    /** {@link #fromTextFile(LlamaModel, Tokenizer, Path, int, int, long)} into a store with the given settings. */
    public static Calibration fromTextFile(LlamaModel model, Tokenizer tokenizer, Path file, int count, int seqLen, long seed,
                                           ActivationStore.Settings storage) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new BadInputException(file + ": calibration text is not UTF-8 text (a binary file?)");
        } catch (IOException e) {
            throw new BadInputException(file + ": cannot read calibration text: " + e.getMessage());
        }
        int[] stream = tokenizer.encode(text, false);
        int[][] windows;
        try {
            windows = textWindows(stream, tokenizer.prefixIds(), count, seqLen, seed);
        } catch (IllegalArgumentException e) {
            throw new BadInputException(file + ": " + e.getMessage());
        }
        ActivationStore store = new ActivationStore(model.hiddenSize(), storage);
        for (int[] ids : windows) store.add(model.embed(ids), ids.length);
        return new Calibration(store);
    }

    /**
     * LLaVA calibration (ALGORITHMS.md section 2: the paper uses 128 LLaVA-Instruct samples, text
     * cut to 256 tokens, 576 image tokens each): {@code count} records of a LLaVA conversation file
     * chosen at random (seeded, without replacement; all of them when count >= the file's size;
     * kept in file order), each rendered whole (question and answer) with the model's chat
     * template, tokenized with the image / video placeholders expanded, cut to its visual tokens
     * plus at most {@code maxTextTokens} text tokens, and embedded with the projected image and
     * video features merged in: the input the decoder sees when the model runs.
     */
    public static Calibration fromLlava(LlavaModel model, Path json, Path imagesDir, int count, int maxTextTokens, long seed) {
        return fromLlava(model, json, imagesDir, count, maxTextTokens, seed, ActivationStore.Settings.inMemory());
    }

    /**
     * {@link #fromLlava(LlavaModel, Path, Path, int, int, long)} into a store with the given
     * settings. The vision tower runs once per distinct image or video file (conversations that share
     * one share its features); {@link #visionSeconds()} is the time it took.
     */
    public static Calibration fromLlava(LlavaModel model, Path json, Path imagesDir, int count, int maxTextTokens, long seed,
                                        ActivationStore.Settings storage) {
        List<LlavaDataset.Sample> data = LlavaDataset.load(json, imagesDir);
        if (data.isEmpty()) throw new BadInputException(json + ": no samples");
        if (count < 1) throw new BadInputException("the number of calibration samples must be >= 1, got " + count);
        if (maxTextTokens < 1) throw new BadInputException("the calibration text length must be >= 1, got " + maxTextTokens);
        int[] pick = choose(data.size(), count, seed);
        int maxPos = model.language().config().maxPositions();
        ActivationStore store = new ActivationStore(model.language().hiddenSize(), storage);
        Map<Path, float[]> features = new HashMap<>(), videos = new HashMap<>();
        long visionNanos = 0;
        for (int i : pick) {
            LlavaDataset.Sample s = data.get(i);
            float[] f = null, v = null;
            if (s.image() != null) {
                Path key = s.image().toAbsolutePath().normalize();
                f = features.get(key);
                if (f == null) {
                    long t0 = System.nanoTime();
                    f = model.encodeImage(s.image());
                    visionNanos += System.nanoTime() - t0;
                    features.put(key, f);
                }
            }
            if (s.video() != null) {
                Path key = s.video().toAbsolutePath().normalize();
                v = videos.get(key);
                if (v == null) {
                    long t0 = System.nanoTime();
                    v = model.encodeVideo(s.video(), 0);
                    visionNanos += System.nanoTime() - t0;
                    videos.put(key, v);
                }
            }
            LlavaModel.Media media = new LlavaModel.Media(f == null ? List.of() : List.of(f), v == null ? List.of() : List.of(v));
            int[] ids = model.promptIds(s.messages(true), false, media);
            int imagePositions = 0;
            for (int id : ids) if (id == model.imageTokenId() || id == model.videoTokenId()) imagePositions++;
            int len = Math.min(ids.length, imagePositions + maxTextTokens);
            int kept = 0;
            for (int t = 0; t < len; t++) if (ids[t] == model.imageTokenId() || ids[t] == model.videoTokenId()) kept++;
            if (kept != imagePositions) len = ids.length; // never cut an image or video apart (text this long is unusual)
            if (len > maxPos)
                throw new BadInputException(json + ": sample " + s.id() + " has " + len + " tokens, more than the model's " + maxPos + " positions");
            ids = Arrays.copyOf(ids, len);
            store.add(model.embed(ids, media), len);
        }
        Calibration c = new Calibration(store);
        c.visionSeconds = visionNanos / 1e9;
        c.images = features.size();
        return c;
    }

    /** count distinct indices of [0, n) chosen uniformly (seeded), sorted; all of them when count >= n. */
    static int[] choose(int n, int count, long seed) {
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        if (count >= n) return idx;
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < count; i++) { // partial Fisher-Yates
            int j = i + rnd.nextInt(n - i);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        int[] out = Arrays.copyOf(idx, count);
        Arrays.sort(out);
        return out;
    }

    /**
     * Cuts {@code count} windows of {@code seqLen} token ids from a token stream (encoded without
     * special tokens). Each window is the tokenizer's prefix (what encoding adds in front: [BOS]
     * for Llama, nothing for Qwen2) followed by consecutive tokens of the stream: a model always
     * sees BOS at position 0 when it runs, and position 0 behaves unlike the others (attention
     * sinks), so calibrating on BOS-first windows matches inference.
     *
     * <p>Window starts are uniform and seeded: when count windows fit without overlap, the slack
     * (stream length minus the covered tokens) is split at count sorted uniform points, i.e.
     * start_i = v_i + i * len with v sorted uniform in [0, slack], which never overlaps; otherwise
     * starts are drawn independently and windows may overlap. Windows come in stream order.
     *
     * @throws IllegalArgumentException when the stream is shorter than one window
     */
    public static int[][] textWindows(int[] stream, int[] prefix, int count, int seqLen, long seed) {
        if (count < 1) throw new IllegalArgumentException("the number of calibration samples must be >= 1, got " + count);
        int len = seqLen - prefix.length; // stream tokens per window
        if (len < 1) throw new IllegalArgumentException("calibration sequence length " + seqLen + " is too short");
        if (stream.length < len)
            throw new IllegalArgumentException("calibration text has " + stream.length + " tokens, fewer than one window of " + len);
        SplittableRandom rnd = new SplittableRandom(seed);
        long slack = (long) stream.length - (long) count * len;
        int[] starts = new int[count];
        if (slack >= 0) {
            long[] v = new long[count];
            for (int i = 0; i < count; i++) v[i] = rnd.nextLong(slack + 1);
            Arrays.sort(v);
            for (int i = 0; i < count; i++) starts[i] = (int) (v[i] + (long) i * len);
        } else {
            for (int i = 0; i < count; i++) starts[i] = rnd.nextInt(stream.length - len + 1);
            Arrays.sort(starts);
        }
        int[][] out = new int[count][seqLen];
        for (int i = 0; i < count; i++) {
            System.arraycopy(prefix, 0, out[i], 0, prefix.length);
            System.arraycopy(stream, starts[i], out[i], prefix.length, len);
        }
        return out;
    }
}
