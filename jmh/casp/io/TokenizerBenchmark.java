package casp.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Tokenizer encode of about 4 KiB of English prose: stories260K's SentencePiece-style BPE with
 * byte fallback (../shared/models/stories260K/model, or -Dcasp.stories=DIR) and tiny-llava's
 * byte-level BPE (testdata/tiny-llava/model).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class TokenizerBenchmark {
    static final String PARAGRAPH = "Once upon a time, in a small town by the sea, a girl named Lily found a shiny "
            + "red stone on the beach. She picked it up and ran home to show her mother. \"Look, Mom! It's "
            + "glowing,\" she said. Her mother smiled, held it against the light, and counted 3 thin lines "
            + "inside it. They put the stone on the window sill, next to 12 old shells, and watched the boats "
            + "come back before dinner.\n";

    @Param({"stories260K", "tiny-llava"})
    String tokenizer;

    Tokenizer tok;
    String text;

    @Setup
    public void setup() {
        Path dir = tokenizer.equals("stories260K")
                ? Path.of(System.getProperty("casp.stories", "../shared/models/stories260K/model"))
                : Path.of("testdata/tiny-llava/model");
        if (!Files.isDirectory(dir)) throw new IllegalStateException(tokenizer + " not found at " + dir.toAbsolutePath());
        tok = Tokenizer.load(dir);
        text = PARAGRAPH.repeat(4096 / PARAGRAPH.length() + 1);
    }

    @Benchmark
    public int[] encode() {
        return tok.encode(text);
    }
}
