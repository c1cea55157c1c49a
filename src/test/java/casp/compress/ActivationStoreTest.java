package casp.compress;

import casp.kernel.Bf16;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Samples kept in memory or spilled, float32 or bfloat16: the same values wherever they live. */
class ActivationStoreTest {
    private static final int HIDDEN = 17;
    private static final int[] TOKENS = {1, 7, 33, 2, 129};

    private static float[][] samples(long seed) {
        Random r = new Random(seed);
        float[][] s = new float[TOKENS.length][];
        for (int i = 0; i < TOKENS.length; i++) {
            s[i] = new float[TOKENS[i] * HIDDEN];
            for (int j = 0; j < s[i].length; j++) s[i][j] = (float) r.nextGaussian() * 3;
        }
        return s;
    }

    private static float[] bf16(float[] x) {
        float[] y = x.clone();
        Bf16.round(y, 0, y.length);
        return y;
    }

    @Test
    void spilledSamplesReadBackAsStoredAndAreRewrittenInPlace(@TempDir Path tmp) throws Exception {
        for (DType dtype : new DType[]{DType.F32, DType.BF16}) {
            float[][] x = samples(1);
            Path file = tmp.resolve(dtype + ".bin");
            // A budget for the first two samples: the rest spill.
            long budget = (long) (TOKENS[0] + TOKENS[1]) * HIDDEN * dtype.bytes();
            try (ActivationStore s = new ActivationStore(HIDDEN, new ActivationStore.Settings(dtype, budget, file))) {

                for (int i = 0; i < x.length; i++) s.add(x[i].clone(), TOKENS[i]);
                assertEquals(budget, s.memoryBytes());
                long total = 0;
                for (int t : TOKENS) total += (long) t * HIDDEN * dtype.bytes();
                assertEquals(total - budget, s.spilledBytes());
                assertEquals(total - budget, Files.size(file));
                float[] buf = new float[s.maxLength()];
                for (int i = 0; i < x.length; i++) {
                    s.read(i, buf);
                    float[] want = dtype == DType.F32 ? x[i] : bf16(x[i]);
                    assertArrayEquals(want, java.util.Arrays.copyOf(buf, s.length(i)), dtype + " sample " + i);
                }
                // Rewrite the middle (spilled) sample and the first (in memory); the others are untouched.
                float[][] y = samples(2);
                s.write(2, y[2]);
                s.write(0, y[0]);
                s.read(2, buf);
                assertArrayEquals(dtype == DType.F32 ? y[2] : bf16(y[2]), java.util.Arrays.copyOf(buf, s.length(2)));
                s.read(3, buf);
                assertArrayEquals(dtype == DType.F32 ? x[3] : bf16(x[3]), java.util.Arrays.copyOf(buf, s.length(3)));
                s.read(0, buf);
                assertArrayEquals(dtype == DType.F32 ? y[0] : bf16(y[0]), java.util.Arrays.copyOf(buf, s.length(0)));
            }
            assertFalse(Files.exists(file), "scratch file removed on close");
        }
    }

    @Test
    void rawBytesAreTheStoredElementsLittleEndian(@TempDir Path tmp) throws Exception {
        float[][] x = samples(3);
        for (DType dtype : new DType[]{DType.F32, DType.BF16}) {
            for (long budget : new long[]{Long.MAX_VALUE, 0}) {
                try (ActivationStore s = new ActivationStore(HIDDEN, new ActivationStore.Settings(dtype, budget, tmp.resolve("s.bin")))) {
                    s.add(x[4].clone(), TOKENS[4]);
                    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                    s.writeRaw(0, Channels.newChannel(bytes));
                    ByteBuffer b = ByteBuffer.wrap(bytes.toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
                    assertEquals(x[4].length * dtype.bytes(), b.remaining());
                    for (float v : x[4]) {
                        if (dtype == DType.F32) assertEquals(Float.floatToRawIntBits(v), b.getInt());
                        else assertEquals(Bf16.fromFloat(v), b.getShort());
                    }
                }
            }
        }
    }

    @Test
    void aCopySharesTheBudgetWithItsOriginal(@TempDir Path tmp) throws Exception {
        float[][] x = samples(5);
        long budget = (long) (TOKENS[0] + TOKENS[1] + TOKENS[2]) * HIDDEN * 4; // the first three samples
        try (ActivationStore s = new ActivationStore(HIDDEN, new ActivationStore.Settings(DType.F32, budget, tmp.resolve("s.bin")))) {
            for (int i = 0; i < x.length; i++) s.add(x[i], TOKENS[i]);
            assertEquals(budget, s.memoryBytes());
            try (ActivationStore c = s.copy(tmp.resolve("c.bin"))) {
                assertEquals(0, c.memoryBytes(), "the original holds the whole budget");
                assertEquals(s.bytes(), c.spilledBytes());
                float[] a = new float[s.maxLength()], b = new float[s.maxLength()];
                for (int i = 0; i < x.length; i++) {
                    s.read(i, a);
                    c.read(i, b);
                    for (int j = 0; j < s.length(i); j++) assertEquals(a[j], b[j]);
                }
            }
        }
        long half = (long) TOKENS[1] * HIDDEN * 4;
        try (ActivationStore s = new ActivationStore(HIDDEN, new ActivationStore.Settings(DType.F32, 3 * half, tmp.resolve("s2.bin")))) {
            s.add(x[1], TOKENS[1]);
            try (ActivationStore c = s.copy(tmp.resolve("c2.bin"))) {
                assertEquals(half, c.memoryBytes(), "what the original leaves of the budget is the copy's");
                assertTrue(s.memoryBytes() + c.memoryBytes() <= 3 * half);
            }
        }
    }

    @Test
    void inMemoryFloatSamplesAreTheCallersArraysAndCopiesAreIndependent(@TempDir Path tmp) {
        float[][] x = samples(4);
        ActivationStore s = new ActivationStore(HIDDEN, ActivationStore.Settings.inMemory());
        for (int i = 0; i < x.length; i++) s.add(x[i], TOKENS[i]);
        assertSame(x[1], s.load(1, new float[1]));
        try (ActivationStore c = s.copy(tmp.resolve("copy.bin"))) {
            float[] buf = new float[s.maxLength()];
            c.read(1, buf);
            float saved = x[1][0];
            x[1][0] += 1;
            float[] again = new float[s.maxLength()];
            c.read(1, again);
            assertEquals(saved, again[0]);
            assertTrue(buf[0] == again[0]);
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1.0f, Bf16.toFloat(Bf16.fromFloat(1.0f + 0x1p-9f)));               // below half: down
        assertEquals(1.0f + 0x1p-7f, Bf16.toFloat(Bf16.fromFloat(1.0f + 0x1p-7f + 0x1p-9f))); // below half from an odd value: down
        assertEquals(1.0f, Bf16.toFloat(Bf16.fromFloat(1.0f + 0x1p-8f)));               // tie to even (down)
        assertEquals(1.0f + 0x1p-6f, Bf16.toFloat(Bf16.fromFloat(1.0f + 0x1p-7f + 0x1p-8f))); // tie to even (up)
        assertTrue(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(Float.NaN))));
        assertEquals(Float.POSITIVE_INFINITY, Bf16.toFloat(Bf16.fromFloat(Float.POSITIVE_INFINITY)));
    }
}
