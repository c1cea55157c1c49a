package casp.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import casp.io.ModelConfig;
import casp.kernel.AllocationMeter;
import casp.quant.gptq.QuantizedLinear;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A decode step of the 2-bit runtime allocates nothing once warmed up, on any thread it runs on
 * (measured in a JVM of its own, see {@link AllocationMeter}). The shapes make every kind of step
 * take part: mat-vecs split over the threads (gate, up, down: over 2^15 words) and inline
 * (q, k, v, o), attention split over the threads (256 cached positions), a float32 head split by
 * rows; each step's token is drawn by a sampler at temperature 0.8.
 */
class DecodeAllocationTest {
    private static final int CONTEXT = 256, STEPS = 20;

    @Test
    void twoBitDecodeAndSampleStepAllocatesNothing() throws Exception {
        Map<String, Long> bytes = AllocationMeter.inFreshJvm(Probe.class);
        assertEquals(Map.of("decode", 0L), bytes, "bytes allocated by " + STEPS + " decode steps");
    }

    /** The measurement, run in its own JVM. */
    public static final class Probe {
        public static void main(String[] args) {
            ModelConfig.TextConfig c = SyntheticModel.config("llama", 512, 1408, 2, 8, 4, 64, 1024, CONTEXT + STEPS, 10000.0, null, false);
            LlamaModel model = SyntheticModel.create(c, 1, QuantizedLinear.random(2, 128, 1));
            KvCache cache = model.newCache(CONTEXT + STEPS);
            float[] logits = new float[model.vocabSize()];
            int[] prompt = new int[CONTEXT];
            for (int i = 0; i < CONTEXT; i++) prompt[i] = (i * 31 + 7) % c.vocabSize();
            model.forward(prompt, cache, false);
            Sampler sampler = new Sampler(0.8f, 3);
            int[] token = {5};
            Runnable round = () -> {
                for (int s = 0; s < STEPS; s++) {
                    model.decode(token[0], cache, logits);
                    token[0] = sampler.sample(logits, 0, logits.length);
                }
                cache.reset();
                cache.advance(CONTEXT);
            };
            AllocationMeter.report("decode", new AllocationMeter().settledBytes(round, 30_000));
        }
    }
}
