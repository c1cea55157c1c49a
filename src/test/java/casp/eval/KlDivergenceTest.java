package casp.eval;

import casp.TestData;
import casp.compress.CompressionOptions;
import casp.io.Tokenizer;
import casp.model.DecoderLayer;
import casp.model.DenseLinear;
import casp.model.LlamaModel;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KlDivergenceTest {

    /** KL(softmax(a) || softmax(b)) the long way, in double. */
    private static double naive(float[] a, float[] b) {
        double ma = Double.NEGATIVE_INFINITY, mb = Double.NEGATIVE_INFINITY;
        for (float v : a) ma = Math.max(ma, v);
        for (float v : b) mb = Math.max(mb, v);
        double za = 0, zb = 0;
        for (float v : a) za += Math.exp(v - ma);
        for (float v : b) zb += Math.exp(v - mb);
        double kl = 0;
        for (int i = 0; i < a.length; i++) {
            double p = Math.exp(a[i] - ma) / za, q = Math.exp(b[i] - mb) / zb;
            if (p > 0) kl += p * Math.log(p / q);
        }
        return kl;
    }

    @Test
    void matchesTheDefinition() {
        Random r = new Random(1);
        for (int vocab : new int[]{1, 2, 7, 33, 512, 1031}) {
            float[] a = new float[vocab + 3], b = new float[vocab + 5];
            for (int i = 0; i < a.length; i++) a[i] = (float) (r.nextGaussian() * 4);
            for (int i = 0; i < b.length; i++) b[i] = (float) (r.nextGaussian() * 4);
            double want = naive(Arrays.copyOfRange(a, 3, 3 + vocab), Arrays.copyOfRange(b, 5, 5 + vocab));
            double got = KlDivergence.between(a, 3, b, 5, vocab);
            assertEquals(want, got, 1e-9 * (1 + want), "vocab " + vocab);
            assertEquals(0.0, KlDivergence.between(a, 3, a, 3, vocab), "KL of a distribution with itself");
            // Softmax ignores a constant shift of the logits.
            float[] shifted = a.clone();
            for (int i = 0; i < shifted.length; i++) shifted[i] += 10f;
            assertEquals(0.0, KlDivergence.between(a, 3, shifted, 3, vocab), 1e-5);
            if (vocab > 1) assertTrue(got > 0);
        }
        KlDivergence.Mean m = new KlDivergence.Mean();
        m.add(0.5);
        m.add(1.5);
        assertEquals(1.0, m.mean());
        assertEquals(1.5, m.max());
        assertEquals(2, m.count());
    }

    @Test
    void zeroAgainstItselfPositiveAgainstAQuantizedCopy() throws Exception {
        Path dir = TestData.model("stories260K");
        LlamaModel ref = LlamaModel.load(dir);
        int[] all = Tokenizer.load(dir).encode(Files.readString(TestData.file("models/stories260K/reference/eval.txt")), true);
        int[] tokens = Arrays.copyOf(all, 4 * 128);

        KlDivergence.Result self = KlDivergence.evaluate(ref, ref, tokens, 128, null);
        assertEquals(4 * 127, self.positions());
        // Zero up to the forward pass's reproducibility: the Vector API's exp may differ in the last
        // bit between interpreted and JIT-compiled code, so two passes of one model can differ by ~1e-7
        // in a logit (KL ~1e-14); exactly equal logits give exactly 0 (matchesTheDefinition).
        assertEquals(0.0, self.meanKl(), 1e-10, "same model");
        Perplexity.Result p = Perplexity.evaluate(ref, tokens, 128, null);
        assertEquals(p.ppl(), self.perplexity().ppl(), 1e-6 * p.ppl(), "same protocol as Perplexity (up to the exp noise above)");
        assertEquals(p.tokensScored(), self.perplexity().tokensScored());

        double kl4 = klOfRtn(dir, ref, tokens, 4), kl2 = klOfRtn(dir, ref, tokens, 2);
        assertTrue(kl4 > 1e-4, "4-bit RTN changes the distributions: " + kl4);
        assertTrue(kl2 > kl4, "2 bits hurt more than 4: " + kl2 + " vs " + kl4);
    }

    /** KL of a copy of stories260K with every decoder linear rounded to nearest at the given width. */
    private static double klOfRtn(Path dir, LlamaModel ref, int[] tokens, int bits) {
        LlamaModel q = LlamaModel.load(dir);
        CompressionOptions o = new CompressionOptions("rtn", bits, CompressionOptions.AUTO_GROUP, false, false, true, 1, 2, 0, 0.01);
        for (DecoderLayer l : q.layers()) {
            for (String name : DecoderLayer.LINEARS) {
                DenseLinear d = (DenseLinear) l.linear(name);
                float[] w = o.quantizer(d.in()).quantize(d.weight(), d.out(), d.in(), null).dequantize();
                l.setLinear(name, new DenseLinear(d.in(), d.out(), w, d.bias()));
            }
        }
        KlDivergence.Result r = KlDivergence.evaluate(q, ref, tokens, 128, null);
        assertTrue(r.maxKl() >= r.meanKl());
        return r.meanKl();
    }
}
