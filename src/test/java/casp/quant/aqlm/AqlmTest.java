package casp.quant.aqlm;

import casp.io.BadInputException;
import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.quant.Layers;
import casp.quant.ProxyError;
import casp.quant.aqlm.AqlmTensors;
import casp.quant.gptq.Rtn;
import casp.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The AQLM quantizer: each step is checked against an independent, naive computation of the
 * objective tr((Ŵ - W) H (Ŵ - W)^T) and its gradients.
 */
class AqlmTest {

    /** The objective from scratch, with naive loops, for the state's codes, codebooks and scales. */
    private static double naiveObjective(Aqlm.State st) {
        double[] e = naiveDecode(st);
        for (int i = 0; i < e.length; i++) e[i] -= st.w[i];
        double total = 0;
        for (int r = 0; r < st.rows; r++) {
            for (int i = 0; i < st.cp; i++) {
                double s = 0;
                for (int j = 0; j < st.cp; j++) s += st.h[i * st.cp + j] * e[r * st.cp + j];
                total += e[r * st.cp + i] * s;
            }
        }
        return total;
    }

    private static double[] naiveDecode(Aqlm.State st) {
        double[] out = new double[st.rows * st.cp];
        for (int r = 0; r < st.rows; r++) {
            for (int g = 0; g < st.groups; g++) {
                for (int m = 0; m < st.m; m++) {
                    int code = st.codes[(r * st.groups + g) * st.m + m];
                    for (int i = 0; i < 8; i++) out[r * st.cp + g * 8 + i] += st.scales[r] * st.cb[(m * st.k + code) * 8 + i];
                }
            }
        }
        return out;
    }

    /** A state with random codes, scales near the row norms and codebooks from random rows' groups. */
    private static Aqlm.State randomState(int rows, int cols, int m, int k, long seed) {
        float[] w = Layers.weights(rows, cols, seed);
        double[] h = Layers.hessian(cols, 4 * cols, seed + 1);
        Aqlm.State st = new Aqlm.State(w, rows, cols, h, m, k);
        Random rnd = new Random(seed + 2);
        for (int i = 0; i < st.codes.length; i++) st.codes[i] = rnd.nextInt(k);
        for (int i = 0; i < st.cb.length; i++) st.cb[i] = rnd.nextGaussian() * 0.1;
        for (int r = 0; r < rows; r++) st.scales[r] = 0.05 + 0.1 * rnd.nextDouble();
        return st;
    }

    private static Aqlm.State copy(Aqlm.State s) {
        float[] w = new float[s.rows * s.cols];
        for (int r = 0; r < s.rows; r++) for (int c = 0; c < s.cols; c++) w[r * s.cols + c] = (float) s.w[r * s.cp + c];
        double[] h = new double[s.cols * s.cols];
        for (int i = 0; i < s.cols; i++) for (int j = 0; j < s.cols; j++) h[i * s.cols + j] = s.h[i * s.cp + j];
        Aqlm.State c = new Aqlm.State(w, s.rows, s.cols, h, s.m, s.k);
        System.arraycopy(s.codes, 0, c.codes, 0, s.codes.length);
        System.arraycopy(s.cb, 0, c.cb, 0, s.cb.length);
        System.arraycopy(s.scales, 0, c.scales, 0, s.scales.length);
        return c;
    }

    @Test
    void objectiveMatchesTheNaiveOneAndNeverIncreasesAcrossSteps() {
        int rows = 40, cols = 44; // 44 = 5.5 groups: the padded last group is exercised
        float[] w = Layers.weights(rows, cols, 1);
        double[] h = Layers.hessian(cols, 200, 2);
        for (Aqlm.Options o : new Aqlm.Options[]{
                Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(5).withRelTolerance(0),
                Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(5).withRelTolerance(0).withBeamWidth(1).withJointLimit(0)}) {
            AqlmWeight q = new Aqlm(o).quantize(w, rows, cols, h);
            double[] hist = q.objectiveHistory();
            assertTrue(hist.length >= 4, "at least k-means, the first solve and one round: " + Arrays.toString(hist));
            for (int i = 1; i < hist.length; i++)
                assertTrue(hist[i] <= hist[i - 1] * (1 + 1e-12), "step " + i + " raised the objective: " + Arrays.toString(hist));
            assertTrue(hist[hist.length - 1] < 0.9 * hist[0], "the rounds improve on k-means: " + Arrays.toString(hist));
            // The stored weight's objective is the naive one of its dequantized form.
            float[] wq = q.dequantize();
            float[] d = new float[wq.length];
            for (int i = 0; i < d.length; i++) d[i] = wq[i] - w[i];
            double stored = ProxyError.trace(d, rows, cols, h), ref = ProxyError.trace(w, rows, cols, h);
            assertEquals(q.stats().get("objective_stored").doubleValue(), stored / ref, 1e-4 * stored / ref);
        }
    }

    @Test
    void objectiveHelperEqualsTheNaiveObjective() {
        Aqlm.State st = randomState(9, 21, 2, 16, 3);
        double got = Aqlm.objective(st, st.decode(), null), want = naiveObjective(st);
        assertEquals(want, got, 1e-10 * want);
    }

    @Test
    void beamSearchNeverWorsensTheObjective() {
        for (int width : new int[]{1, 2, 5}) {
            Aqlm.State st = randomState(12, 40, 2, 16, 10 + width);
            Aqlm.updateCodebooks(st, 1 << 20);
            Aqlm.updateScales(st);
            double[] t = new double[st.rows * st.cp];
            double before = Aqlm.objective(st, st.decode(), t);
            long changed = Aqlm.beamSearch(st, t, width);
            double after = naiveObjective(st);
            assertTrue(changed > 0, "random codes are not a local optimum");
            assertTrue(after <= before * (1 + 1e-12), "width " + width + ": " + before + " -> " + after);
            assertTrue(after < 0.99 * before, "width " + width + " found better codes: " + before + " -> " + after);
            // A second sweep from there never worsens either.
            double again = Aqlm.objective(st, st.decode(), t);
            Aqlm.beamSearch(st, t, width);
            assertTrue(naiveObjective(st) <= again * (1 + 1e-12));
        }
    }

    @Test
    void wideBeamFindsTheExhaustiveOptimumOfEachRow() {
        // 2 groups x 2 codebooks of 4 codewords: 4^4 = 256 code vectors per row. A beam of 64
        // keeps every 3-position prefix, so the last step sees all 256 vectors.
        Aqlm.State st = randomState(5, 16, 2, 4, 7);
        Aqlm.State brute = copy(st);
        double[] t = new double[st.rows * st.cp];
        Aqlm.objective(st, st.decode(), t);
        Aqlm.beamSearch(st, t, 64);
        for (int r = 0; r < st.rows; r++) {
            double best = Double.POSITIVE_INFINITY;
            int[] bestCodes = null;
            for (int v = 0; v < 256; v++) {
                int[] c = {v & 3, v >> 2 & 3, v >> 4 & 3, v >> 6 & 3};
                System.arraycopy(c, 0, brute.codes, r * 4, 4);
                double obj = rowObjective(brute, r);
                if (obj < best) {
                    best = obj;
                    bestCodes = c;
                }
            }
            System.arraycopy(st.codes, r * 4, brute.codes, r * 4, 4);
            assertEquals(best, rowObjective(brute, r), 1e-9 * Math.abs(best), "row " + r + " optimum " + Arrays.toString(bestCodes));
        }
    }

    private static double rowObjective(Aqlm.State st, int r) {
        double[] e = naiveDecode(st);
        double total = 0;
        for (int i = 0; i < st.cp; i++) {
            double s = 0;
            for (int j = 0; j < st.cp; j++) s += st.h[i * st.cp + j] * (e[r * st.cp + j] - st.w[r * st.cp + j]);
            total += (e[r * st.cp + i] - st.w[r * st.cp + i]) * s;
        }
        return total;
    }

    /** dL/dC (same layout as the codebooks): 2 sum_r s_r P_r^T H (ŵ_r - w_r), with naive loops. */
    private static double[] codebookGradient(Aqlm.State st) {
        double[] e = naiveDecode(st);
        for (int i = 0; i < e.length; i++) e[i] -= st.w[i];
        double[] grad = new double[st.cb.length];
        for (int r = 0; r < st.rows; r++) {
            double[] eh = new double[st.cp];
            for (int i = 0; i < st.cp; i++) for (int j = 0; j < st.cp; j++) eh[i] += st.h[i * st.cp + j] * e[r * st.cp + j];
            for (int g = 0; g < st.groups; g++) {
                for (int m = 0; m < st.m; m++) {
                    int code = st.codes[(r * st.groups + g) * st.m + m];
                    for (int i = 0; i < 8; i++) grad[(m * st.k + code) * 8 + i] += 2 * st.scales[r] * eh[g * 8 + i];
                }
            }
        }
        return grad;
    }

    private static double maxAbs(double[] a, int from, int to) {
        double m = 0;
        for (int i = from; i < to; i++) m = Math.max(m, Math.abs(a[i]));
        return m;
    }

    @Test
    void codebookSolveIsStationaryForFixedCodesAndScales() {
        Aqlm.State st = randomState(30, 36, 2, 16, 21);
        double[] g0 = codebookGradient(st);
        double before = naiveObjective(st);
        Aqlm.updateCodebooks(st, 1 << 20); // joint: 2 x 16 x 8 = 256 unknowns
        double[] g = codebookGradient(st);
        double scale = maxAbs(g0, 0, g0.length);
        assertTrue(maxAbs(g, 0, g.length) <= 1e-7 * scale, "gradient " + maxAbs(g, 0, g.length) + " vs " + scale);
        assertTrue(naiveObjective(st) < before);

        // One codebook at a time: the last one solved is stationary with the other fixed.
        Aqlm.State one = randomState(30, 36, 2, 16, 22);
        double[] h0 = codebookGradient(one);
        Aqlm.updateCodebooks(one, 0);
        double[] h1 = codebookGradient(one);
        int half = one.k * 8;
        assertTrue(maxAbs(h1, half, 2 * half) <= 1e-7 * maxAbs(h0, 0, h0.length));
    }

    @Test
    void scaleUpdateIsStationary() {
        Aqlm.State st = randomState(11, 24, 2, 16, 31);
        Aqlm.updateScales(st);
        double[] saved = st.scales.clone();
        Arrays.fill(st.scales, 1);
        double[] unscaled = naiveDecode(st);
        System.arraycopy(saved, 0, st.scales, 0, saved.length);
        double[] e = naiveDecode(st);
        for (int r = 0; r < st.rows; r++) {
            double d = 0, norm = 0; // dL/ds_r = 2 q_r H e_r
            for (int i = 0; i < st.cp; i++) {
                for (int j = 0; j < st.cp; j++) {
                    d += 2 * unscaled[r * st.cp + i] * st.h[i * st.cp + j] * (e[r * st.cp + j] - st.w[r * st.cp + j]);
                    norm += Math.abs(2 * unscaled[r * st.cp + i] * st.h[i * st.cp + j] * st.w[r * st.cp + j]);
                }
            }
            assertTrue(Math.abs(d) <= 1e-9 * norm, "row " + r + ": dL/ds " + d + " vs " + norm);
        }
    }

    @Test
    void proxyErrorBelowRtnAtTwoBitsOnCorrelatedInputs() {
        int rows = 128, cols = 128;
        float[] w = Layers.weights(rows, cols, 41);
        double[] h = Layers.hessian(cols, 512, 42);
        double rtn = ProxyError.relative(w, new Rtn(2, -1, false, false).quantize(w, rows, cols, h).dequantize(), rows, cols, h);
        double rtnG = ProxyError.relative(w, new Rtn(2, 64, false, false).quantize(w, rows, cols, h).dequantize(), rows, cols, h);
        for (Aqlm.Options o : new Aqlm.Options[]{
                Aqlm.Options.defaults(2).withIterations(2).withJointLimit(2048), // 2x8, one codebook per solve
                Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(3)}) {
            AqlmWeight q = new Aqlm(o).quantize(w, rows, cols, h);
            double aqlm = ProxyError.relative(w, q.dequantize(), rows, cols, h);
            System.out.printf("AQLM %dx%d proxy %.4g (%.3f bits) vs RTN 2-bit per channel %.4g, g64 %.4g%n", o.numCodebooks(),
                    o.codebookBits(), aqlm, q.effectiveBits(), rtn, rtnG);
            assertTrue(aqlm < rtnG && rtnG < rtn, o + ": AQLM " + aqlm + ", RTN " + rtn + " / g64 " + rtnG);
        }
    }

    @Test
    void effectiveBitsCountCodesCodebooksAndScales() {
        // 2x8 on 4096 x 4096: codes 2 bits, codebooks 2 x 256 x 8 fp16, scales 4096 fp16.
        long bits = AqlmWeight.storageBits(4096, 4096, 2, 8);
        assertEquals(4096L * 512 * 2 * 8 + 2L * 256 * 8 * 16 + 4096L * 16, bits);
        // stories260K's down_proj, 64 x 172: 22 groups (the last one padded) per row.
        assertEquals(64L * 22 * 16 + 65536 + 64 * 16, AqlmWeight.storageBits(64, 172, 2, 8));
        AqlmWeight q = new AqlmWeight(3, 17, 2, 4, new int[3 * 3 * 2], new float[2 * 16 * 8], new float[3], null, Map.of());
        assertEquals((3.0 * 3 * 2 * 4 + 2 * 16 * 8 * 16 + 3 * 16) / (3 * 17), q.effectiveBits(), 1e-12);
    }

    /** A weight with random codes over the whole range, fp16 codebooks and scales. */
    private static AqlmWeight randomWeight(int rows, int cols, int m, int b, long seed) {
        Random rnd = new Random(seed);
        int groups = AqlmWeight.groups(cols), k = 1 << b;
        int[] codes = new int[rows * groups * m];
        for (int i = 0; i < codes.length; i++) codes[i] = rnd.nextInt(k);
        codes[0] = k - 1;
        codes[1] = k / 2;
        float[] cb = new float[m * k * 8];
        for (int i = 0; i < cb.length; i++) cb[i] = casp.kernel.Fp16.toFloat(casp.kernel.Fp16.fromFloat((float) rnd.nextGaussian()));
        float[] s = new float[rows];
        for (int i = 0; i < rows; i++) s[i] = casp.kernel.Fp16.toFloat(casp.kernel.Fp16.fromFloat((float) (0.01 + rnd.nextDouble())));
        return new AqlmWeight(rows, cols, m, b, codes, cb, s, null, Map.of());
    }

    @Test
    void storedTensorsRoundTripExactly(@TempDir Path tmp) throws Exception {
        int[][] configs = {{2, 8}, {4, 4}, {1, 10}, {1, 3}};
        for (int[] c : configs) {
            AqlmWeight a = randomWeight(7, 27, c[0], c[1], c[0] * 100 + c[1]);
            Path f = tmp.resolve("l" + c[0] + "x" + c[1] + ".safetensors");
            SafeTensorsWriter wr = new SafeTensorsWriter();
            a.tensors().write(wr, "layer");
            wr.write(f);
            SafeTensorsFile st = SafeTensorsFile.open(f);
            assertEquals(c[1] <= 8 ? DType.I8 : DType.I16, st.info("layer.codes").dtype());
            assertArrayEquals(new long[]{7, 4, c[0]}, st.info("layer.codes").shape());
            assertArrayEquals(new long[]{c[0], 1L << c[1], 1, 8}, st.info("layer.codebooks").shape());
            assertEquals(DType.F16, st.info("layer.scales").dtype());
            assertArrayEquals(new long[]{7, 1, 1, 1}, st.info("layer.scales").shape());
            AqlmWeight b = AqlmWeight.of(AqlmTensors.read(st, "layer", 7, 27, c[0], c[1]), 27, Map.of());
            assertArrayEquals(a.codes, b.codes);
            assertArrayEquals(a.dequantize(), b.dequantize(), 0f);
            // Codes above 2^(B-1) are stored negative, as AQLM's pack_int_data does.
            byte[] raw = st.readBytes("layer.codes");
            int first = c[1] <= 8 ? raw[0] : (short) ((raw[1] << 8) | (raw[0] & 0xff));
            int second = c[1] <= 8 ? raw[1] : (short) ((raw[3] << 8) | (raw[2] & 0xff));
            assertEquals(-1, first, "code 2^B - 1");
            assertEquals(-(1 << c[1]) / 2, second, "code 2^(B-1)");
        }
        // A codes tensor of the wrong shape names the tensor.
        AqlmWeight a = randomWeight(7, 27, 2, 8, 5);
        Path f = tmp.resolve("bad.safetensors");
        SafeTensorsWriter wr = new SafeTensorsWriter();
        a.tensors().write(wr, "layer");
        wr.write(f);
        BadInputException e = assertThrows(BadInputException.class,
                () -> AqlmTensors.read(SafeTensorsFile.open(f), "layer", 7, 40, 2, 8));
        assertTrue(e.getMessage().contains("layer.codes"), e.getMessage());
        e = assertThrows(BadInputException.class, () -> AqlmTensors.read(SafeTensorsFile.open(f), "layer", 7, 27, 1, 8));
        assertTrue(e.getMessage().contains("layer.codes"), e.getMessage());
    }

    /** Codebooks fixed to another layer's: only codes and scales move, the objective never rises, the stored bits drop the codebooks. */
    @Test
    void fixedCodebooksFitCodesAndScalesOnly() {
        int rows = 40, cols = 44; // a padded last group
        Aqlm aqlm = new Aqlm(Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(4).withRelTolerance(0));
        AqlmWeight owner = aqlm.quantize(Layers.weights(rows, cols, 61), rows, cols, Layers.hessian(cols, 200, 62));
        float[] w = Layers.weights(rows, cols, 63);
        double[] h = Layers.hessian(cols, 200, 64);
        AqlmWeight shared = aqlm.quantizeWithCodebooks(w, rows, cols, h, owner.codebooks, 0);
        assertArrayEquals(owner.codebooks, shared.codebooks, 0f);
        assertEquals(0, shared.codebooksLayer);
        assertTrue(shared.sharesCodebooks());
        double[] hist = shared.objectiveHistory();
        for (int i = 1; i < hist.length; i++)
            assertTrue(hist[i] <= hist[i - 1] * (1 + 1e-12), "step " + i + " raised the objective: " + Arrays.toString(hist));
        assertTrue(hist[hist.length - 1] < hist[0], "the code search improves on the greedy assignment: " + Arrays.toString(hist));
        float[] wq = shared.dequantize();
        float[] d = new float[wq.length];
        for (int i = 0; i < d.length; i++) d[i] = wq[i] - w[i];
        double ref = ProxyError.trace(w, rows, cols, h), err = ProxyError.trace(d, rows, cols, h);
        assertEquals(shared.stats().get("objective_stored").doubleValue(), err / ref, 1e-4 * err / ref);
        assertTrue(err / ref < 0.5, "the shared codebooks still fit this layer: relative error " + err / ref);
        // Stored: codes (4 bits, 6 groups x 4 codebooks per row), fp16 scales and the 32-bit layer index; no codebooks.
        long bits = 40L * 6 * 4 * 4 + 16L * rows + 32;
        assertEquals(bits, shared.storageBits());
        assertEquals(bits, AqlmWeight.sharedStorageBits(rows, cols, 4, 4));
        assertEquals(AqlmWeight.storageBits(rows, cols, 4, 4) - 16L * 4 * 16 * 8 + 32, bits);
        assertEquals((double) bits / (rows * cols), shared.effectiveBits(), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> aqlm.quantizeWithCodebooks(w, rows, cols, h, new float[8], 0));
        assertThrows(IllegalArgumentException.class, () -> aqlm.quantizeWithCodebooks(w, rows, cols, h, owner.codebooks, -1));
    }

    /** A layer sharing codebooks is written without them and read back through the owner's, from a folder's store. */
    @Test
    void sharedCodebooksResolveThroughTheOwnersTensor(@TempDir Path tmp) throws Exception {
        AqlmWeight owner = randomWeight(7, 27, 4, 4, 71), other = randomWeight(5, 27, 4, 4, 72);
        AqlmWeight sharer = new AqlmWeight(5, 27, 4, 4, other.codes, owner.codebooks, other.scales, null, Map.of(), 1);
        String op = "model.language_model.layers.1.mlp.up_proj", sp = "model.language_model.layers.12.mlp.up_proj";
        assertEquals(sp.replace("layers.12", "layers.1"), AqlmTensors.ownerPrefix(sp, 1));
        assertThrows(IllegalArgumentException.class, () -> AqlmTensors.ownerPrefix("mlp.up_proj", 1));
        Path dir = tmp.resolve("m");
        java.nio.file.Files.createDirectories(dir);
        SafeTensorsWriter wr = new SafeTensorsWriter();
        owner.write(wr, op);
        sharer.write(wr, sp);
        wr.write(dir.resolve("model.safetensors"));
        casp.io.WeightStore ws = casp.io.WeightStore.open(dir);
        assertTrue(!ws.has(sp + ".codebooks") && ws.has(sp + ".codebooks_layer"), "no codebooks of its own");
        assertEquals(1, ws.ints(sp + ".codebooks_layer")[0]);
        AqlmTensors back = AqlmTensors.read(ws, sp, 5, 27, 4, 4);
        assertArrayEquals(sharer.dequantize(), AqlmWeight.of(back, 27, Map.of()).dequantize(), 0f);
        assertArrayEquals(owner.dequantize(), AqlmWeight.of(AqlmTensors.read(ws, op, 7, 27, 4, 4), 27, Map.of()).dequantize(), 0f);

        // Without the owner's codebooks: a user error naming the reference and the missing tensor.
        Path lone = tmp.resolve("lone");
        java.nio.file.Files.createDirectories(lone);
        SafeTensorsWriter w2 = new SafeTensorsWriter();
        sharer.write(w2, sp);
        w2.write(lone.resolve("model.safetensors"));
        BadInputException e = assertThrows(BadInputException.class, () -> AqlmTensors.read(casp.io.WeightStore.open(lone), sp, 5, 27, 4, 4));
        assertTrue(e.getMessage().contains(sp + ".codebooks_layer") && e.getMessage().contains(op + ".codebooks"), e.getMessage());
    }

    @Test
    void quantizedRoundTripGivesTheSameWeight(@TempDir Path tmp) throws Exception {
        int rows = 24, cols = 30;
        float[] w = Layers.weights(rows, cols, 51);
        double[] h = Layers.hessian(cols, 100, 52);
        AqlmWeight q = new Aqlm(Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(2)).quantize(w, rows, cols, h);
        Path f = tmp.resolve("q.safetensors");
        SafeTensorsWriter wr = new SafeTensorsWriter();
        q.tensors().write(wr, "p");
        wr.write(f);
        AqlmWeight back = AqlmWeight.of(AqlmTensors.read(SafeTensorsFile.open(f), "p", rows, cols, 4, 4), cols, q.stats());
        assertArrayEquals(q.dequantize(), back.dequantize(), 0f);
    }

    @Test
    void optionsRejectWhatTheyCannotDo() {
        assertThrows(IllegalArgumentException.class, () -> Aqlm.Options.defaults(2).withCodebooks(1, 16));
        assertThrows(IllegalArgumentException.class, () -> Aqlm.Options.defaults(2).withCodebooks(3, 5));
        assertThrows(IllegalArgumentException.class, () -> Aqlm.Options.defaults(2).withBeamWidth(0));
        assertEquals(2, Aqlm.Options.defaults(2).bits());
        assertEquals(2, Aqlm.Options.defaults(2).numCodebooks());
        assertEquals(8, Aqlm.Options.defaults(2).codebookBits());
    }
}
