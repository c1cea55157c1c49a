package casp;

import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.model.Generator;
import casp.model.LlamaModel;
import casp.model.Sampler;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's Java example, as written there, on stories260K. */
class ApiExampleTest {

    @Test
    void readmeExampleGenerates() {
        Path dir = TestData.modelDir("stories260K").resolve("model");
        // --- as in the README ---
        ModelFolder folder = ModelFolder.open(dir);
        LlamaModel model = LlamaModel.load(folder);
        Tokenizer tokenizer = Tokenizer.load(folder.dir());
        int[] prompt = tokenizer.encode("Once upon a time");
        int[] out = new Generator(model).generate(prompt, 40, Sampler.greedy(), tokenizer.eosIds(), t -> true);
        String text = tokenizer.decode(out);
        // ---
        assertTrue(out.length > 0 && !text.isBlank(), "generated: '" + text + "'");
        assertTrue(text.startsWith(", there was"), "stories260K's greedy continuation: '" + text + "'");
    }
}
