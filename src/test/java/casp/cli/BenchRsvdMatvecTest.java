package casp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchRsvdMatvecTest {

    /** Runs `casp bench ARGS...`, returning {exit code, stdout, stderr}. */
    static Object[] run(String... args) {
        String[] full = new String[args.length + 1];
        full[0] = "bench";
        System.arraycopy(args, 0, full, 1, args.length);
        CliRunner.Result r = CliRunner.run(full);
        return new Object[] {r.exitCode(), r.out(), r.err()};
    }

    @Test
    void rsvdPrintsOneJsonObject() throws Exception {
        Object[] r = run("rsvd", "--m", "70", "--n", "50", "--rank", "8", "--runs", "3", "--warmup", "0", "--json");
        assertEquals(0, r[0], (String) r[2]);
        JsonNode j = new ObjectMapper().readTree(((String) r[1]).trim());
        assertEquals("rsvd", j.get("op").asText());
        assertEquals(70, j.get("m").asInt());
        assertEquals(50, j.get("n").asInt());
        assertEquals(8, j.get("rank").asInt());
        assertEquals(2, j.get("power_iters").asInt());
        assertTrue(j.get("seconds").asDouble() > 0);
        assertTrue(j.get("best_seconds").asDouble() <= j.get("seconds").asDouble());
        assertTrue(j.get("gflops").asDouble() > 0);
    }

    @Test
    void matvecPrintsOneJsonObject() throws Exception {
        for (String tokens : new String[] {"1", "9"}) {
            Object[] r = run("matvec", "--bits", "3", "--rows", "40", "--cols", "256", "--tokens", tokens, "--runs", "2", "--warmup", "0", "--json");
            assertEquals(0, r[0], (String) r[2]);
            JsonNode j = new ObjectMapper().readTree(((String) r[1]).trim());
            assertEquals(tokens.equals("1") ? "matvec" : "matmul", j.get("op").asText());
            assertEquals(3, j.get("bits").asInt());
            assertEquals(40, j.get("rows").asInt());
            assertEquals(256, j.get("cols").asInt());
            assertEquals(128, j.get("group_size").asInt());
            assertTrue(j.get("gbytes_per_s").asDouble() > 0);
            assertTrue(j.get("gbytes_per_s_with_scales").asDouble() > j.get("gbytes_per_s").asDouble());
        }
    }

    @Test
    void badFlagsExitWithCode2AndNameTheFlag() {
        Object[] r = run("rsvd", "--m", "10", "--n", "10", "--rank", "11");
        assertEquals(2, r[0]);
        assertTrue(((String) r[2]).contains("--rank"), (String) r[2]);
        r = run("matvec", "--bits", "5");
        assertEquals(2, r[0]);
        assertTrue(((String) r[2]).contains("--bits"), (String) r[2]);
        r = run("matvec", "--group-size", "24", "--rows", "4", "--cols", "64");
        assertEquals(2, r[0]);
        assertTrue(((String) r[2]).contains("--group-size"), (String) r[2]);
        r = run("matvec", "--rows", "abc");
        assertEquals(2, r[0]);
    }

    @Test
    void timingMedianAndBest() {
        int[] calls = {0};
        BenchTiming.Stats none = BenchTiming.measure(0, 5, () -> calls[0]++);
        assertEquals(5, calls[0], "no warm-up when --warmup 0");
        assertEquals(5, none.seconds.length);
        // A clock that advances 0.5 s at every reading: the 2 warm-up runs, then more until 2 s have passed
        // (readings at 0.5, 1.0, 1.5 s: 3 more), then 5 timed runs of 0.5 s each.
        calls[0] = 0;
        long[] now = {0};
        BenchTiming.Stats s = BenchTiming.measure(2, 5, () -> calls[0]++, 2.0, () -> (now[0] += 500_000_000L) - 500_000_000L);
        assertEquals(10, calls[0], "5 warm-up runs, then 5 timed");
        for (double t : s.seconds) assertEquals(0.5, t, 1e-12);
        assertEquals(5, s.seconds.length);
        assertTrue(s.best <= s.median);
        double[] sorted = s.seconds.clone();
        java.util.Arrays.sort(sorted);
        assertEquals(sorted[2], s.median);
    }
}
