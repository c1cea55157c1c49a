package casp.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** `casp bench svd` prints one JSON object with the documented keys; bad flags exit with 2. */
class BenchSvdCommandTest {

    @Test
    void svdPrintsOneJsonObject() throws Exception {
        CliRunner.Result r = CliRunner.run("bench", "svd", "--n", "37", "--m", "50", "--runs", "3", "--warmup", "1", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out().trim());
        assertEquals("svd", j.get("op").asText());
        assertEquals(37, j.get("n").asInt());
        assertEquals(50, j.get("m").asInt());
        assertEquals(3, j.get("runs").asInt());
        assertTrue(j.get("seconds").asDouble() > 0);
        assertTrue(j.get("best_seconds").asDouble() <= j.get("seconds").asDouble());
        // Square by default.
        r = CliRunner.run("bench", "svd", "--n", "5", "--runs", "1", "--warmup", "0");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("op=svd") && r.out().contains("m=5"), r.out());
    }

    @Test
    void badFlagsExitWithCode2AndNameTheFlag() {
        for (String[] args : new String[][] {{"--n", "0"}, {"--m", "-1"}, {"--runs", "0"}, {"--warmup", "-2"}, {"--n", "50000"}}) {
            String[] full = new String[args.length + 2];
            full[0] = "bench";
            full[1] = "svd";
            System.arraycopy(args, 0, full, 2, args.length);
            CliRunner.Result r = CliRunner.run(full);
            assertEquals(2, r.exitCode(), String.join(" ", args));
            assertTrue(r.err().contains(args[0].equals("--n") && args[1].equals("50000") ? "--n" : args[0]), r.err());
        }
        assertEquals(2, CliRunner.run("bench", "svd", "--n", "abc").exitCode());
    }
}
