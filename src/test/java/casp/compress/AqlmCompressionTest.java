package casp.compress;

import casp.quant.aqlm.Aqlm;
import casp.quant.aqlm.AqlmWeight;
import casp.TestData;
import casp.eval.Perplexity;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.Tokenizer;
import casp.quant.aqlm.AqlmLinear;
import casp.model.DecoderLayer;
import casp.model.LlamaModel;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `casp compress --method aqlm` end to end on stories260K: the folder loads, runs and reproduces
 * the quantizer's weights exactly; a crashed run resumes from AQLM tensors in the checkpoint. Uses
 * 4x4 codebooks (2 bits) and a small calibration set to stay fast.
 */
class AqlmCompressionTest {
    private static final PrintStream LOG = new PrintStream(new ByteArrayOutputStream());

    private static CompressionRun.Request request(Path out, boolean resume) {
        Aqlm.Options a = Aqlm.Options.defaults(2).withCodebooks(4, 4).withIterations(2);
        CompressionOptions o = new CompressionOptions("aqlm", 2, CompressionOptions.AUTO_GROUP, false, false, true, 6, 96, 5, 0.01, a);
        return new CompressionRun.Request(TestData.model("stories260K"), TestData.file("models/stories260K/reference/eval.txt"),
                null, o, out, false, resume, true);
    }

    private static final class Crash extends RuntimeException {}

    @Test
    void compressedStoriesLoadsRunsAndResumes(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("aqlm");
        // A crash after block 1: the checkpoint holds blocks 0 and 1 as AQLM tensors.
        assertThrows(Crash.class, () -> CompressionRun.run(request(out, false), new SequentialCompressor.Listener() {
            @Override public void blockDone(SequentialCompressor.BlockResult b, Calibration act) {
                if (b.layer() == 1) throw new Crash();
            }
        }, LOG));
        assertFalse(Files.exists(out));
        Path cp = Checkpoint.dirFor(out);
        SafeTensorsFile block0 = SafeTensorsFile.open(cp.resolve("block-0.safetensors"));
        byte[] codes0 = block0.readBytes("mlp.down_proj.codes");

        CompressionRun.Outcome o = CompressionRun.run(request(out, true), null, LOG);
        assertEquals(2, o.resumedFromBlock());
        assertEquals(5, o.blocks().size());

        // quantization_config in Hugging Face's aqlm form.
        JsonNode qc = new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("aqlm", qc.get("quant_method").asText());
        assertEquals(4, qc.get("nbits_per_codebook").asInt());
        assertEquals(4, qc.get("num_codebooks").asInt());
        assertEquals(8, qc.get("in_group_size").asInt());
        assertEquals(1, qc.get("out_group_size").asInt());
        boolean head = false;
        for (JsonNode n : qc.get("linear_weights_not_to_quantize")) {
            head |= n.asText().equals("lm_head.weight");
            assertFalse(n.asText().contains("_proj"), n.asText());
        }
        assertTrue(head, "the (tied) output head is listed as not quantized");

        // The folder's tensors: the checkpoint's block 0 carried over, every linear reproduced exactly.
        ModelFolder folder = ModelFolder.open(out);
        SafeTensorsFile st = SafeTensorsFile.open(out.resolve("model.safetensors"));
        assertArrayEquals(codes0, st.readBytes("model.layers.0.mlp.down_proj.codes"));
        assertFalse(st.tensors().containsKey("model.layers.0.mlp.down_proj.weight"));
        LlamaModel m = LlamaModel.load(folder);
        double bits = 0;
        long weights = 0;
        for (SequentialCompressor.BlockResult b : o.blocks()) {
            for (SequentialCompressor.LinearResult r : b.linears()) {
                assertEquals("aqlm", r.method());
                AqlmLinear l = (AqlmLinear) m.layer(r.layer()).linear(r.name());
                assertArrayEquals(r.stored().dequantize(), l.dequantize(), 0f, r.layer() + " " + r.name());
                assertEquals(AqlmWeight.storageBits(r.rows(), r.cols(), 4, 4), Math.round(r.effectiveBits() * r.weights()));
                bits += r.effectiveBits() * r.weights();
                weights += r.weights();
            }
        }
        assertEquals(bits / weights, o.effectiveBits(), 1e-9);
        assertTrue(m.layer(0).linear(DecoderLayer.DOWN) instanceof AqlmLinear);

        Path text = TestData.file("models/stories260K/reference/eval.txt");
        Tokenizer tok = Tokenizer.load(out);
        int[] ids = tok.encode(Files.readString(text), true);
        double ppl = Perplexity.evaluate(m, ids, 256, null).ppl();
        double rtn = SequentialCompressorTest.storiesPpl("rtn", 2, 6, 96);
        System.out.printf("stories260K AQLM 4x4: ppl %.4f at %.3f effective bits; RTN 2-bit %.2f%n", ppl, o.effectiveBits(), rtn);
        assertTrue(Double.isFinite(ppl) && ppl > 1, "ppl " + ppl);
        assertTrue(ppl < rtn, "AQLM ppl " + ppl + " vs RTN 2-bit " + rtn);
    }
}
