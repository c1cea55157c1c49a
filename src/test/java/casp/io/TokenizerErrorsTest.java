package casp.io;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A user's bad file or bad id gives a BadInputException that names the file. */
class TokenizerErrorsTest {
    @TempDir
    Path tmp;

    private String message(Runnable r) {
        return assertThrows(BadInputException.class, r::run).getMessage();
    }

    private Path write(String json) throws IOException {
        Path dir = Files.createTempDirectory(tmp, "tok");
        Files.writeString(dir.resolve("tokenizer.json"), json);
        return dir;
    }

    private static ObjectNode valid() throws IOException {
        return (ObjectNode) TokenizerTestSupport.JSON.readTree(TokenizerTestSupport.byteLevelJson(
                TokenizerTestSupport.LLAMA3_PATTERN, TokenizerTestSupport.MERGES, true, false, false, false));
    }

    @Test
    void missingFolderOrFile() {
        Path nowhere = tmp.resolve("no-such-model");
        assertTrue(message(() -> Tokenizer.load(nowhere)).contains(nowhere.toString()));
        String m = message(() -> Tokenizer.load(tmp));
        assertTrue(m.contains("no tokenizer.json in " + tmp), m);
    }

    @Test
    void malformedJson() throws IOException {
        Path dir = write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}");
        String m = message(() -> Tokenizer.load(dir));
        assertTrue(m.startsWith("malformed JSON in " + dir.resolve("tokenizer.json")), m);
        Path dir2 = write("[1, 2]");
        assertTrue(message(() -> Tokenizer.load(dir2)).contains("malformed JSON in " + dir2.resolve("tokenizer.json")));
        Path dir3 = write("{\"version\": \"1.0\"}");
        assertTrue(message(() -> Tokenizer.load(dir3)).contains("no \"model\""));
    }

    @Test
    void unsupportedModelTypes() throws IOException {
        for (String type : new String[]{"WordPiece", "Unigram", "WordLevel"}) {
            ObjectNode root = valid();
            ((ObjectNode) root.get("model")).put("type", type);
            Path dir = write(root.toString());
            assertEquals("unsupported tokenizer model type " + type + " in " + dir.resolve("tokenizer.json")
                    + " (only BPE is supported)", message(() -> Tokenizer.load(dir)));
        }
        ObjectNode root = valid();
        root.putObject("normalizer").put("type", "BertNormalizer");
        assertEquals("unsupported normalizer type BertNormalizer in x.json",
                message(() -> Tokenizer.fromJson(root.toString(), null, "x.json")));
        ObjectNode root2 = valid();
        root2.putObject("pre_tokenizer").put("type", "UnicodeScripts");
        assertEquals("unsupported pre_tokenizer type UnicodeScripts in x.json",
                message(() -> Tokenizer.fromJson(root2.toString(), null, "x.json")));
    }

    @Test
    void badMergesAndVocab() throws IOException {
        ObjectNode root = valid();
        ((ObjectNode) root.get("model")).putArray("merges").add("a b c");
        String m = message(() -> Tokenizer.fromJson(root.toString(), null, "x.json"));
        assertTrue(m.contains("x.json") && m.contains("merge 0"), m);
        ObjectNode root2 = valid();
        ((ObjectNode) root2.get("model")).putArray("merges").add("zz q");
        m = message(() -> Tokenizer.fromJson(root2.toString(), null, "x.json"));
        assertTrue(m.contains("not in the vocabulary"), m);
        ObjectNode root3 = valid();
        ((ObjectNode) root3.get("model")).put("vocab", "oops");
        assertTrue(message(() -> Tokenizer.fromJson(root3.toString(), null, "x.json")).contains("model.vocab"));
    }

    @Test
    void unknownIds() {
        Tokenizer t = TokenizerTestSupport.llama3Like();
        int n = t.vocabSize();
        String m = message(() -> t.decode(new int[]{5, n}));
        assertEquals("token id " + n + " is not in the vocabulary of llama3-test (ids 0.." + (n - 1) + ")", m);
        assertTrue(message(() -> t.decode(new int[]{-1})).contains("token id -1"));
        TokenizerStream s = t.stream(new int[0]);
        assertTrue(message(() -> s.push(n + 7)).contains("token id " + (n + 7)));
        assertTrue(t.isKnownId(n - 1));
        assertTrue(!t.isKnownId(n));
    }
}
