package casp.compress;

import casp.TestData;
import casp.eval.Perplexity;
import casp.io.SafeTensorsFile;
import casp.io.Tokenizer;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import casp.quant.quip.QuipLinear;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** QuIP# end to end on stories260K: compress, checkpoint and resume, write, load, run. */
class QuipCompressionTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());

    private static CompressionRun.Request request(Path out, boolean resume) {
        CompressionOptions o = new CompressionOptions("quip", 2, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01);
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, o, out, false, resume, true);
    }

    private static final class Crash extends RuntimeException {}

    @Test
    void compressResumeLoadAndRun(@TempDir Path tmp) throws Exception {
        CompressionRun.run(request(tmp.resolve("warm"), false), null, LOG); // JIT warm-up, as in CompressionRunTest
        Path fresh = tmp.resolve("fresh");
        CompressionRun.Outcome a = CompressionRun.run(request(fresh, false), null, LOG);

        // effective bits: 16-bit codes per 8 padded weights, 1 bit per sign, a float scale per linear
        long weights = 5L * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 64 * 172);
        double bits = 5.0 * (2 * (64 * 8 * 16 + 64 + 64 + 32) + 2 * (32 * 8 * 16 + 32 + 64 + 32)
                + 2 * (176 * 8 * 16 + 176 + 64 + 32) + (64 * 22 * 16 + 64 + 176 + 32));
        assertEquals(bits / weights, a.effectiveBits(), 1e-12);

        Path out = tmp.resolve("resumed");
        SequentialCompressor.Listener crashAfter2 = new SequentialCompressor.Listener() {
            @Override public void blockDone(SequentialCompressor.BlockResult b, Calibration act) {
                if (b.layer() == 2) throw new Crash();
            }
        };
        assertThrows(Crash.class, () -> CompressionRun.run(request(out, false), crashAfter2, LOG));
        CompressionRun.Outcome b = CompressionRun.run(request(out, true), null, LOG);
        assertEquals(3, b.resumedFromBlock());
        SafeTensorsFile fa = SafeTensorsFile.open(fresh.resolve("model.safetensors")), fb = SafeTensorsFile.open(out.resolve("model.safetensors"));
        assertEquals(fa.tensors().keySet(), fb.tensors().keySet());
        for (String name : fa.tensors().keySet()) assertArrayEquals(fa.readBytes(name), fb.readBytes(name), name);
        assertEquals(a.effectiveBits(), b.effectiveBits());

        // The folder: quantization_config, codes in place of every linear weight.
        JsonNode qc = new ObjectMapper().readTree(fresh.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("quip#", qc.get("quant_method").asText());
        assertEquals("E8P12", qc.get("codebook").asText());
        assertTrue(fa.tensors().containsKey("model.layers.4.mlp.down_proj.qidxs"));
        assertFalse(fa.tensors().containsKey("model.layers.4.mlp.down_proj.weight"));
        assertArrayEquals(new long[]{176, 8}, fa.info("model.layers.0.mlp.up_proj.qidxs").shape());

        // Loaded, every linear runs on the stored codes, and the compressed model works.
        LlamaModel m = LlamaModel.load(fresh);
        for (int l = 0; l < m.numLayers(); l++) {
            for (String name : DecoderLayer.LINEARS) assertInstanceOf(QuipLinear.class, m.layer(l).linear(name), l + " " + name);
        }
        Tokenizer tok = Tokenizer.load(TestData.model("stories260K"));
        int[] tokens = tok.encode(Files.readString(TestData.file("models/stories260K/reference/eval.txt")), true);
        double ppl = Perplexity.evaluate(m, tokens, 256, null).ppl();
        // finite, worse than float32 (3.055), far better than a uniform guess over the 512 tokens
        assertTrue(Double.isFinite(ppl) && ppl > 3.06 && ppl < 256, "ppl " + ppl);
    }
}
