package casp.compress;

import casp.io.MachineMemory;
import casp.kernel.Bf16;
import casp.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The calibration activations of a compression run: one [tokens, hidden] matrix per sample, kept
 * as float32 or bfloat16. Samples stay in memory while the store's memory budget allows; the rest
 * go to a scratch file (when one is given), written and read back in place, so the bytes a sample
 * holds never depend on where it lives. Not thread-safe.
 */
public final class ActivationStore implements AutoCloseable {
    /** Where samples go: element type, bytes they may hold in memory, the scratch file (null: never spill). */
    public record Settings(DType dtype, long memoryBudget, Path spillFile) {
        public Settings {
            if (dtype != DType.F32 && dtype != DType.BF16) throw new IllegalArgumentException("activations are F32 or BF16, not " + dtype);
            if (memoryBudget < 0) throw new IllegalArgumentException("memory budget must be >= 0, got " + memoryBudget);
        }

        /** Everything in memory as float32 (the small models' default). */
        public static Settings inMemory() {
            return new Settings(DType.F32, Long.MAX_VALUE, null);
        }

    }

    private final int hidden;
    private final Settings settings;
    private final int bytesPerValue;
    private final List<Integer> tokens = new ArrayList<>();
    /** Per sample: float[] or short[] when in memory, else null (then {@link #fileOffset} holds it). */
    private final List<Object> inMemory = new ArrayList<>();
    private final List<Long> fileOffset = new ArrayList<>();
    private long memoryBytes, fileBytes;
    private FileChannel file;
    private ByteBuffer io;

    public ActivationStore(int hidden, Settings settings) {
        if (hidden < 1) throw new IllegalArgumentException("hidden size must be positive, got " + hidden);
        this.hidden = hidden;
        this.settings = settings;
        this.bytesPerValue = settings.dtype().bytes();
    }

    public int hidden() { return hidden; }

    public DType dtype() { return settings.dtype(); }

    public Settings settings() { return settings; }

    public int size() { return tokens.size(); }

    public int tokens(int i) { return tokens.get(i); }

    /** Values of sample i: tokens(i) * hidden. */
    public int length(int i) { return tokens.get(i) * hidden; }

    /** The longest sample's length in values (the scratch size that fits every sample). */
    public int maxLength() {
        int m = 0;
        for (int t : tokens) m = Math.max(m, t * hidden);
        return m;
    }

    /** Bytes of all samples at the store's element type. */
    public long bytes() { return memoryBytes + fileBytes; }

    /** Bytes held in memory. */
    public long memoryBytes() { return memoryBytes; }

    /** Bytes in the scratch file. */
    public long spilledBytes() { return fileBytes; }

    /**
     * Adds a sample of tokens rows from x (at least tokens * hidden values); returns its index.
     * A float32 sample kept in memory keeps x itself (not copied).
     */
    public int add(float[] x, int tokens) {
        long n = (long) tokens * hidden;
        if (tokens < 1 || x.length < n) throw new IllegalArgumentException("sample of " + tokens + " tokens needs " + n + " values, got " + x.length);
        long bytes = n * bytesPerValue;
        boolean spill = settings.spillFile() != null && memoryBytes + bytes > settings.memoryBudget();
        this.tokens.add(tokens);
        if (!spill) {
            Object held;
            if (settings.dtype() == DType.F32) {
                held = x.length == n ? x : java.util.Arrays.copyOf(x, (int) n);
            } else {
                short[] s = new short[(int) n];
                Bf16.fromFloats(x, 0, s, 0, (int) n);
                held = s;
            }
            inMemory.add(held);
            fileOffset.add(-1L);
            memoryBytes += bytes;
        } else {
            inMemory.add(null);
            fileOffset.add(fileBytes);
            fileBytes += bytes;
            writeToFile(this.tokens.size() - 1, x);
        }
        return this.tokens.size() - 1;
    }

    /**
     * Sample i as floats: the held array itself for a float32 sample in memory (changes to it are
     * the sample's), else scratch filled (it must hold length(i) values).
     */
    public float[] load(int i, float[] scratch) {
        Object held = inMemory.get(i);
        if (held instanceof float[] f) return f;
        read(i, scratch);
        return scratch;
    }

    /** Copies sample i as floats into dst[0, length(i)). */
    public void read(int i, float[] dst) {
        int n = length(i);
        if (dst.length < n) throw new IllegalArgumentException("buffer of " + dst.length + " values for a sample of " + n);
        Object held = inMemory.get(i);
        if (held instanceof float[] f) {
            System.arraycopy(f, 0, dst, 0, n);
        } else if (held instanceof short[] s) {
            Bf16.toFloats(s, 0, dst, 0, n);
        } else {
            ByteBuffer b = ioBuffer(n);
            readFully(fileOffset.get(i), b);
            b.flip();
            if (settings.dtype() == DType.F32) {
                b.asFloatBuffer().get(dst, 0, n);
            } else {
                short[] s = new short[n];
                b.asShortBuffer().get(s);
                Bf16.toFloats(s, 0, dst, 0, n);
            }
        }
    }

    /** Replaces sample i with src[0, length(i)) (rounded to bfloat16 for a BF16 store). */
    public void write(int i, float[] src) {
        int n = length(i);
        if (src.length < n) throw new IllegalArgumentException("buffer of " + src.length + " values for a sample of " + n);
        Object held = inMemory.get(i);
        if (held instanceof float[] f) {
            if (f != src) System.arraycopy(src, 0, f, 0, n);
        } else if (held instanceof short[] s) {
            Bf16.fromFloats(src, 0, s, 0, n);
        } else {
            writeToFile(i, src);
        }
    }

    /** Writes sample i's stored bytes (little-endian, at the store's element type) to out. */
    public void writeRaw(int i, WritableByteChannel out) throws IOException {
        int n = length(i);
        Object held = inMemory.get(i);
        ByteBuffer b = ioBuffer(n);
        if (held instanceof float[] f) {
            b.asFloatBuffer().put(f, 0, n);
            b.limit(n * 4);
        } else if (held instanceof short[] s) {
            b.asShortBuffer().put(s, 0, n);
            b.limit(n * 2);
        } else {
            readFully(fileOffset.get(i), b);
            b.flip();
        }
        while (b.hasRemaining()) out.write(b);
    }

    /**
     * Settings for a second store beside this one: the same element type, the given scratch file,
     * and what this store leaves of the memory budget, so that both together keep no more than the
     * budget in memory.
     */
    public Settings besideThis(Path spillFile) {
        return new Settings(settings.dtype(), Math.max(0, settings.memoryBudget() - memoryBytes), spillFile);
    }

    /**
     * Settings for a float32 store of intermediate results beside this store and the live ones given:
     * what all of them leave of this store's memory budget, the rest spilled to this store's scratch
     * file name plus "." + suffix (nothing spills when this store never does).
     */
    public Settings float32Beside(String suffix, ActivationStore... live) {
        long left = settings.memoryBudget() - memoryBytes;
        for (ActivationStore s : live) left -= s.memoryBytes;
        Path spill = settings.spillFile() == null ? null : settings.spillFile().resolveSibling(settings.spillFile().getFileName() + "." + suffix);
        return new Settings(DType.F32, Math.max(0, left), spill);
    }

    /**
     * Bytes that stores beside this one may still hold: what the memory budget leaves plus the free
     * space of the scratch file's disk (its nearest existing folder: the scratch folder is made on
     * the first spill); without a scratch file, what the Java heap has left.
     */
    public long roomBeside() {
        if (settings.spillFile() == null) return MachineMemory.freeHeapBytes();
        long memory = Math.max(0, settings.memoryBudget() - memoryBytes);
        long disk = CalibrationBudget.freeDisk(settings.spillFile());
        return memory > Long.MAX_VALUE - disk ? Long.MAX_VALUE : memory + disk;
    }

    /**
     * A store with the same settings (and the given scratch file) holding a copy of every sample. The
     * two share one budget: the copy keeps in memory only what this store leaves of it, so that
     * both together hold no more than the budget (the rest of the copy spills).
     */
    public ActivationStore copy(Path spillFile) {
        ActivationStore c = new ActivationStore(hidden, besideThis(spillFile));
        float[] buf = new float[maxLength()];
        for (int i = 0; i < size(); i++) {
            read(i, buf);
            c.add(buf, tokens(i));
            if (c.inMemory.get(i) == buf) buf = new float[buf.length]; // the copy keeps the array
        }
        return c;
    }

    /** Closes and deletes the scratch file. */
    @Override
    public void close() {
        try {
            if (file != null) file.close();
            file = null;
            if (settings.spillFile() != null) Files.deleteIfExists(settings.spillFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the activation scratch file " + settings.spillFile(), e);
        }
    }

    private ByteBuffer ioBuffer(int values) {
        int bytes = values * bytesPerValue;
        if (io == null || io.capacity() < bytes) io = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        io.clear();
        io.limit(bytes);
        return io;
    }

    private void writeToFile(int i, float[] src) {
        int n = length(i);
        ByteBuffer b = ioBuffer(n);
        if (settings.dtype() == DType.F32) {
            b.asFloatBuffer().put(src, 0, n);
        } else {
            short[] s = new short[n];
            Bf16.fromFloats(src, 0, s, 0, n);
            b.asShortBuffer().put(s);
        }
        try {
            FileChannel ch = channel();
            long pos = fileOffset.get(i);
            while (b.hasRemaining()) pos += ch.write(b, pos);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write calibration activations to " + settings.spillFile(), e);
        }
    }

    private void readFully(long pos, ByteBuffer b) {
        try {
            FileChannel ch = channel();
            while (b.hasRemaining()) {
                int r = ch.read(b, pos);
                if (r < 0) throw new IOException("unexpected end of file");
                pos += r;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read calibration activations from " + settings.spillFile(), e);
        }
    }

    private FileChannel channel() throws IOException {
        if (file == null) {
            Path p = settings.spillFile();
            if (p.getParent() != null) Files.createDirectories(p.getParent());
            file = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
        }
        return file;
    }
}
