package casp.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** `casp bench ...` prints one JSON object with the documented keys; bad flags exit with 2. */
class BenchCommandTest {
    private static String run(int expectedExit, String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
            assertEquals(expectedExit, Main.execute(args), "exit code of casp " + String.join(" ", args));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    private static JsonNode json(String... args) throws Exception {
        String out = run(0, args).trim();
        return new ObjectMapper().readTree(out.substring(out.lastIndexOf('\n') + 1));
    }

    @Test
    void gemmJson() throws Exception {
        JsonNode j = json("bench", "gemm", "--n", "40", "--m", "7", "--runs", "3", "--warmup", "1", "--json");
        assertEquals("gemm", j.get("op").asText());
        assertEquals(7, j.get("m").asInt());
        assertEquals(40, j.get("n").asInt());
        assertEquals(40, j.get("k").asInt());
        double s = j.get("seconds").asDouble();
        assertTrue(s > 0, "seconds");
        assertEquals(2.0 * 7 * 40 * 40 / s / 1e9, j.get("gflops").asDouble(), 1e-6 * j.get("gflops").asDouble());
    }

    @Test
    void syrkAndCholJson() throws Exception {
        JsonNode s = json("bench", "syrk", "--tokens", "50", "--dim", "33", "--runs", "1", "--warmup", "0", "--json");
        assertEquals("syrk", s.get("op").asText());
        assertEquals(50, s.get("tokens").asInt());
        assertEquals(33, s.get("dim").asInt());
        assertTrue(s.get("gflops").asDouble() > 0);
        JsonNode c = json("bench", "chol", "--n", "70", "--runs", "1", "--warmup", "0", "--json");
        assertEquals("chol", c.get("op").asText());
        assertEquals(70, c.get("n").asInt());
        assertTrue(c.get("seconds").asDouble() > 0);
    }

    @Test
    void badSizesExitWith2AndNameTheFlag() {
        assertTrue(run(2, "bench", "gemm", "--n", "0").contains("--n"));
        assertTrue(run(2, "bench", "syrk", "--dim", "-3").contains("--dim"));
        assertTrue(run(2, "bench", "chol", "--n", "10", "--runs", "0").contains("--runs"));
        assertTrue(run(2, "bench", "gemm", "--n", "abc").contains("--n"));
    }
}
