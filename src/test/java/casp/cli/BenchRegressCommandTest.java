package casp.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The regression gate's comparison on hand-written JMH JSON files (no benchmark is run). */
class BenchRegressCommandTest {
    @TempDir
    Path dir;

    /** One JMH result entry: a time benchmark with raw iteration scores and optional allocation. */
    static String entry(String benchmark, String params, String unit, double alloc, double... raw) {
        double mean = 0;
        for (double r : raw) mean += r;
        mean /= raw.length;
        StringBuilder rawJson = new StringBuilder("[[");
        for (int i = 0; i < raw.length; i++) rawJson.append(i == 0 ? "" : ",").append(raw[i]);
        rawJson.append("]]");
        String secondary = Double.isNaN(alloc) ? "{}"
                : "{\"gc.alloc.rate.norm\": {\"score\": " + alloc + ", \"scoreUnit\": \"B/op\"}}";
        return String.format(Locale.ROOT, "{\"benchmark\": \"%s\", \"mode\": \"avgt\", \"params\": {%s},"
                + " \"primaryMetric\": {\"score\": %s, \"scoreError\": 0, \"scoreUnit\": \"%s\", \"rawData\": %s},"
                + " \"secondaryMetrics\": %s}", benchmark, params, mean, unit, rawJson, secondary);
    }

    static final String PROBE = "casp.kernel.MachineProbeBenchmark.";

    Path write(String name, String... entries) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, "[" + String.join(",\n", entries) + "]");
        return p;
    }

    Path baselineFile() throws IOException {
        return write("baseline.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 10, 10.2, 9.8, 10),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5, 5.1, 4.9, 5),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\", \"rows\": \"1\"", "us/op", 16, 100, 102, 98, 100),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"float32\", \"rows\": \"1\"", "us/op", 16, 400, 404, 396, 400),
                entry("casp.model.DecodeContextBenchmark.decodeStep", "\"context\": \"1024\"", "ms/op", 0, 8, 8.1, 7.9, 8),
                entry("casp.io.TokenizerBenchmark.encode", "\"tokenizer\": \"a\"", "us/op", 5000, 50, 51, 49, 50));
    }

    @Test
    void keysSortParametersAndDropThePackage() throws IOException {
        Map<String, JmhRegression.Score> s = JmhRegression.read(baselineFile());
        assertTrue(s.containsKey("LinearBenchmark.forward kind=gptq2 rows=1"), s.keySet().toString());
        JmhRegression.Score fl = s.get("LinearBenchmark.forward kind=float32 rows=1");
        assertEquals(400, fl.mean(), 1e-9);
        // sd of {400, 404, 396, 400} = sqrt(32 / 3); t(0.975, 3) = 3.182; n = 4
        assertEquals(3.182 * Math.sqrt(32.0 / 3) / 2, fl.halfWidth(), 1e-9);
        assertEquals(4, fl.samples());
    }

    @Test
    void studentQuantilesMatchTheTable() {
        assertEquals(12.706, JmhRegression.studentT975(1), 1e-9);
        assertEquals(2.045, JmhRegression.studentT975(29), 1e-9);
        assertTrue(JmhRegression.studentT975(31) > 1.96 && JmhRegression.studentT975(31) < 2.042);
    }

    @Test
    void aSlowerMachineIsNormalisedAwayButASlowerBenchmarkIsFlagged() throws IOException {
        // The machine runs 1.5x slower (both probes); float32 and decode follow it, the tokenizer too;
        // gptq2 runs 3x slower (2x beyond the machine); decode starts allocating.
        Path now = write("now.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 15, 15.3, 14.7, 15),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 7.5, 7.6, 7.4, 7.5),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\", \"rows\": \"1\"", "us/op", 16, 300, 303, 297, 300),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"float32\", \"rows\": \"1\"", "us/op", 16, 600, 606, 594, 600),
                entry("casp.model.DecodeContextBenchmark.decodeStep", "\"context\": \"1024\"", "ms/op", 4096, 12, 12.1, 11.9, 12),
                entry("casp.io.TokenizerBenchmark.encode", "\"tokenizer\": \"b\"", "us/op", 5000, 75, 76, 74, 75));
        JmhRegression.Report r = JmhRegression.compare(JmhRegression.read(baselineFile()), JmhRegression.read(now), 0.10, true);
        assertEquals(1.5, r.machineFactor(), 1e-9);
        Map<String, JmhRegression.Verdict> v = new java.util.HashMap<>();
        for (JmhRegression.Row row : r.rows()) v.put(row.key(), row.verdict());
        assertEquals(JmhRegression.Verdict.SLOWER, v.get("LinearBenchmark.forward kind=gptq2 rows=1"));
        assertEquals(JmhRegression.Verdict.OK, v.get("LinearBenchmark.forward kind=float32 rows=1"));
        assertEquals(JmhRegression.Verdict.ALLOCATES, v.get("DecodeContextBenchmark.decodeStep context=1024"));
        assertEquals(JmhRegression.Verdict.NEW, v.get("TokenizerBenchmark.encode tokenizer=b"));
        assertEquals(JmhRegression.Verdict.MISSING, v.get("TokenizerBenchmark.encode tokenizer=a"));
        assertEquals(2, r.regressions());
        JmhRegression.Row gptq = r.rows().stream().filter(x -> x.key().contains("gptq2")).findFirst().orElseThrow();
        assertEquals(2.0, gptq.ratio(), 1e-9);

        // Without the probe factor, float32 (1.5x) reads as a regression too.
        JmhRegression.Report raw = JmhRegression.compare(JmhRegression.read(baselineFile()), JmhRegression.read(now), 0.10, false);
        assertEquals(3, raw.regressions());
    }

    @Test
    void aSlowdownInsideTheErrorBarsIsNotFlagged() throws IOException {
        // 15% slower on average but the iterations spread widely: the interval reaches below 1.10.
        Path now = write("now.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 10, 10.2, 9.8, 10),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5, 5.1, 4.9, 5),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\", \"rows\": \"1\"", "us/op", 16, 85, 145, 100, 130));
        JmhRegression.Report r = JmhRegression.compare(JmhRegression.read(baselineFile()), JmhRegression.read(now), 0.10, true);
        JmhRegression.Row gptq = r.rows().stream().filter(x -> x.key().contains("gptq2")).findFirst().orElseThrow();
        assertEquals(1.15, gptq.ratio(), 1e-9);
        assertTrue(gptq.ratioLow() < 1.10, "low end " + gptq.ratioLow());
        assertEquals(JmhRegression.Verdict.OK, gptq.verdict());
    }

    @Test
    void theCommandExitsOneOnARegressionAndZeroWithoutOne() throws IOException {
        Path base = baselineFile();
        Path slow = write("slow.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 10, 10.2, 9.8, 10),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5, 5.1, 4.9, 5),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\", \"rows\": \"1\"", "us/op", 16, 200, 202, 198, 200));
        CliRunner.Result r = CliRunner.run("bench", "regress", "--results", slow.toString(), "--baseline", base.toString());
        assertEquals(1, r.exitCode(), r.err());
        assertTrue(r.out().contains("LinearBenchmark.forward kind=gptq2 rows=1"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.contains("gptq2") && l.endsWith("slower")), r.out());

        CliRunner.Result same = CliRunner.run("bench", "regress", "--results", base.toString(), "--baseline", base.toString());
        assertEquals(0, same.exitCode(), same.out() + same.err());
        assertFalse(same.out().lines().anyMatch(l -> l.endsWith("slower")), same.out());

        CliRunner.Result noGate = CliRunner.run("bench", "regress", "--results", slow.toString(), "--baseline", base.toString(), "--no-gate");
        assertEquals(0, noGate.exitCode());
    }

    @Test
    void badInputGetsOneLineAndExitTwo() throws IOException {
        CliRunner.Result missing = CliRunner.run("bench", "regress", "--results", dir.resolve("none.json").toString());
        assertEquals(2, missing.exitCode());
        assertTrue(missing.err().contains("none.json"), missing.err());

        Path notJmh = dir.resolve("x.json");
        Files.writeString(notJmh, "{\"a\": 1}");
        CliRunner.Result bad = CliRunner.run("bench", "regress", "--results", notJmh.toString(), "--baseline", notJmh.toString());
        assertEquals(2, bad.exitCode());
        assertTrue(bad.err().contains("x.json") && !bad.err().contains("at casp."), bad.err());

        CliRunner.Result noJar = CliRunner.run("bench", "regress", "--jar", dir.resolve("no.jar").toString(), "--out", dir.resolve("o").toString());
        assertEquals(2, noJar.exitCode());
        assertTrue(noJar.err().contains("no.jar"), noJar.err());
    }

    @Test
    void mergedPartsKeepEveryResult() throws IOException {
        Path a = write("a.json", entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5, 5));
        Path b = write("b.json", entry("casp.io.TokenizerBenchmark.encode", "", "us/op", 0, 50, 51));
        Path m = dir.resolve("m.json");
        JmhRegression.merge(List.of(a, b, dir.resolve("absent.json")), m);
        assertEquals(2, JmhRegression.read(m).size());
    }

    @Test
    void machineClassNamesCpuAndWidth() {
        String c = BenchRegressCommand.machineClass();
        assertTrue(c.matches("[a-z0-9-]+-(0|128|256|512)bit"), c);
    }

    @Test
    void spreadNormalisesEachRunByItsOwnProbe() throws IOException {
        Path base = baselineFile();
        // Run 2 on a machine 2x slower: its gptq2 time 2x, the same after normalising.
        Path r1 = write("r1.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 10, 10),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5, 5),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\"", "us/op", 16, 90, 90));
        Path r2 = write("r2.json",
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 20, 20),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 10, 10),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\"", "us/op", 16, 220, 220));
        List<JmhRegression.Spread> s = JmhRegression.spread(JmhRegression.read(base),
                List.of(JmhRegression.read(r1), JmhRegression.read(r2)), true);
        JmhRegression.Spread g = s.stream().filter(x -> x.key().contains("gptq2")).findFirst().orElseThrow();
        assertEquals(2, g.runs());
        assertEquals(90, g.min(), 1e-9);
        assertEquals(110, g.max(), 1e-9);
        assertEquals(100, g.mean(), 1e-9);
        assertEquals(Math.sqrt(200) / 100, g.cv(), 1e-9);
        CliRunner.Result r = CliRunner.run("bench", "regress", "--baseline", base.toString(), "--spread", r1.toString(), r2.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("LinearBenchmark.forward kind=gptq2"), r.out());
    }

    /** A run with the probe at speed probeScale (1 = the reference machine) and gptq2 at the given iteration scores. */
    Path run(String name, double probeScale, double alloc, double... gptq2) throws IOException {
        return write(name,
                entry(PROBE + "streamTriad", "", "ms/op", Double.NaN, 10 * probeScale, 10 * probeScale),
                entry(PROBE + "scalarFma", "", "ms/op", Double.NaN, 5 * probeScale, 5 * probeScale),
                entry("casp.model.LinearBenchmark.forward", "\"kind\": \"gptq2\"", "us/op", alloc, gptq2));
    }

    static JmhRegression.Row gptq(JmhRegression.Report r) {
        return r.rows().stream().filter(x -> x.key().contains("gptq2")).findFirst().orElseThrow();
    }

    /** The verdict on gptq2 of a run now (probe at the reference speed) against base at threshold 0.10. */
    JmhRegression.Verdict verdict(List<Map<String, JmhRegression.Score>> base, double bandFactor, double alloc, double... gptq2)
            throws IOException {
        Path now = run("now-" + System.nanoTime() + ".json", 1, alloc, gptq2);
        return gptq(JmhRegression.compare(base, JmhRegression.read(now), 0.10, bandFactor, true)).verdict();
    }

    @Test
    void recordedRunsGiveEachBenchmarkANoiseBandAndALimit() throws IOException {
        // Three recorded runs; the second on a machine 2x slower (its probe and gptq2 both 2x), so
        // normalised the runs read 100, 110 and 125 (iterations identical: zero-width intervals).
        List<Map<String, JmhRegression.Score>> base = List.of(
                JmhRegression.read(run("b1.json", 1, 10, 100, 100)),
                JmhRegression.read(run("b2.json", 2, 20, 220, 220)),
                JmhRegression.read(run("b3.json", 1, 30, 125, 125)));
        JmhRegression.Reference ref = JmhRegression.references(base, true).get("LinearBenchmark.forward kind=gptq2");
        assertEquals(3, ref.runs());
        assertEquals(110, ref.median().mean(), 1e-9);
        assertEquals(0.25, ref.band(), 1e-9);
        assertEquals(125, ref.slowestHigh(), 1e-9);
        assertEquals(100, ref.fastestLow(), 1e-9);
        assertEquals(30, ref.allocBytes(), 1e-9);

        // limit = 1 + max(0.10, 2 x 0.25) = 1.5 against the slowest run (125): 185 passes, 190 does not
        JmhRegression.Row ok = gptq(JmhRegression.compare(base, JmhRegression.read(run("n1.json", 1, 10, 185, 185)), 0.10, 2, true));
        assertEquals(1.5, ok.limit(), 1e-9);
        assertEquals(185 / 125.0, ok.ratioLow(), 1e-9);
        assertEquals(185 / 110.0, ok.ratio(), 1e-9);
        assertEquals(JmhRegression.Verdict.OK, ok.verdict());
        JmhRegression.Row slow = gptq(JmhRegression.compare(base, JmhRegression.read(run("n2.json", 1, 10, 190, 190)), 0.10, 2, true));
        assertEquals(JmhRegression.Verdict.SLOWER, slow.verdict());

        // The same run on a machine 1.5x slower is normalised back to 190 / 1.5: within the limit.
        JmhRegression.Report busy = JmhRegression.compare(base, JmhRegression.read(run("n3.json", 1.5, 10, 190, 190)), 0.10, 2, true);
        assertEquals(1.5, busy.machineFactor(), 1e-9);
        assertEquals(JmhRegression.Verdict.OK, gptq(busy).verdict());

        // Band factor 0: only the threshold counts, 1.1 x 125 = 137.5; and faster than the fastest run by the limit.
        assertEquals(JmhRegression.Verdict.SLOWER, verdict(base, 0, 10, 140, 140));
        assertEquals(JmhRegression.Verdict.OK, verdict(base, 0, 10, 135, 135));
        assertEquals(JmhRegression.Verdict.FASTER, verdict(base, 2, 10, 66, 66));
        assertEquals(JmhRegression.Verdict.OK, verdict(base, 2, 10, 67, 67));
    }

    @Test
    void theIntervalOfTheRunNowIsTakenAtItsFavourableEnd() throws IOException {
        List<Map<String, JmhRegression.Score>> base = List.of(
                JmhRegression.read(run("b1.json", 1, 10, 100, 100)), JmhRegression.read(run("b2.json", 1, 10, 120, 120)));
        // band 0.2, limit 1.4 over 120 = 168: a mean of 175 whose 95% interval reaches below 168 passes
        Path now = run("now.json", 1, 10, 160, 190, 160, 190);
        JmhRegression.Row r = gptq(JmhRegression.compare(base, JmhRegression.read(now), 0.10, 2, true));
        double half = JmhRegression.halfWidth95(List.of(160.0, 190.0, 160.0, 190.0));
        assertEquals((175 - half) / 120, r.ratioLow(), 1e-9);
        assertTrue(r.ratioLow() < 1.4 && r.ratio() > 1.4, r.toString());
        assertEquals(JmhRegression.Verdict.OK, r.verdict());
    }

    @Test
    void aBenchmarkThatAllocatedInNoRecordedRunIsFlaggedWhenItAllocates() throws IOException {
        List<Map<String, JmhRegression.Score>> base = List.of(
                JmhRegression.read(run("b1.json", 1, 0, 100, 100)), JmhRegression.read(run("b2.json", 1, 900, 100, 100)));
        assertEquals(JmhRegression.Verdict.OK, verdict(base, 2, 1900, 100, 100));
        assertEquals(JmhRegression.Verdict.ALLOCATES, verdict(base, 2, 2000, 100, 100));
    }

    @Test
    void aBaselineOfSeveralRunsIsWrittenReadAndGated() throws IOException {
        Path b1 = run("b1.json", 1, 10, 100, 100), b2 = run("b2.json", 1, 10, 125, 125);
        Path base = dir.resolve("base.json");
        CliRunner.Result w = CliRunner.run("bench", "regress", "--write-baseline", "--results", b1.toString(), b2.toString(),
                "--baseline", base.toString());
        assertEquals(0, w.exitCode(), w.err());
        assertTrue(Files.readString(base).contains(JmhRegression.BASELINE_FORMAT));
        List<Map<String, JmhRegression.Score>> runs = JmhRegression.readBaseline(base);
        assertEquals(2, runs.size());
        assertEquals(125, runs.get(1).get("LinearBenchmark.forward kind=gptq2").mean(), 1e-9);
        assertEquals(10, runs.get(1).get("LinearBenchmark.forward kind=gptq2").allocBytes(), 1e-9);

        // band 0.25, limit 1.5 over 125: 180 passes, 200 fails; with --band-factor 0 180 fails too
        Path n1 = run("n1.json", 1, 10, 180, 180), n2 = run("n2.json", 1, 10, 200, 200);
        assertEquals(0, CliRunner.run("bench", "regress", "--results", n1.toString(), "--baseline", base.toString()).exitCode());
        CliRunner.Result slow = CliRunner.run("bench", "regress", "--results", n2.toString(), "--baseline", base.toString());
        assertEquals(1, slow.exitCode(), slow.out());
        assertTrue(slow.out().contains("2 recorded runs"), slow.out());
        assertEquals(1, CliRunner.run("bench", "regress", "--results", n1.toString(), "--baseline", base.toString(),
                "--band-factor", "0").exitCode());

        CliRunner.Result runsWithoutWrite = CliRunner.run("bench", "regress", "--runs", "3", "--results", n1.toString());
        assertEquals(2, runsWithoutWrite.exitCode());
        assertTrue(runsWithoutWrite.err().contains("--runs"), runsWithoutWrite.err());
        CliRunner.Result twoToCompare = CliRunner.run("bench", "regress", "--results", n1.toString(), n2.toString(), "--baseline", base.toString());
        assertEquals(2, twoToCompare.exitCode());
        Path notBaseline = dir.resolve("nb.json");
        Files.writeString(notBaseline, "{\"runs\": 3}");
        CliRunner.Result bad = CliRunner.run("bench", "regress", "--results", n1.toString(), "--baseline", notBaseline.toString());
        assertEquals(2, bad.exitCode());
        assertTrue(bad.err().contains("nb.json") && !bad.err().contains("at casp."), bad.err());
    }

    @Test
    void aReRunKeepsTheFasterScoreOfEachBenchmark() throws IOException {
        Map<String, JmhRegression.Score> first = JmhRegression.read(run("a.json", 1, 10, 300, 300));
        Map<String, JmhRegression.Score> slowerAgain = JmhRegression.read(run("b.json", 1, 10, 310, 310));
        Map<String, JmhRegression.Score> fasterAgain = JmhRegression.read(run("c.json", 1, 10, 120, 120));
        String key = "LinearBenchmark.forward kind=gptq2";
        assertEquals(300, JmhRegression.fasterOf(first, slowerAgain).get(key).mean(), 1e-9);
        assertEquals(120, JmhRegression.fasterOf(first, fasterAgain).get(key).mean(), 1e-9);
        assertEquals(first.keySet(), JmhRegression.fasterOf(first, fasterAgain).keySet());
    }

    @Test
    void flaggedKeysAreReRunByMethodWithEveryParameter() {
        List<String> m = BenchRegressCommand.methods(List.of("LinearBenchmark.forward kind=gptq2 rows=1", "LinearBenchmark.forward kind=fp16 rows=1",
                "SvdBenchmark.svd n=256"));
        assertEquals(List.of("LinearBenchmark.forward", "SvdBenchmark.svd"), m);
        java.util.regex.Pattern p = java.util.regex.Pattern.compile(BenchRegressCommand.methodsRegex(m));
        assertTrue(p.matcher("casp.quant.LinearBenchmark.forward").find());
        assertTrue(p.matcher("casp.kernel.SvdBenchmark.svd").find());
        assertFalse(p.matcher("casp.kernel.SvdBenchmark.svdOfGram").find());
        assertFalse(p.matcher("casp.kernel.GemmBenchmark.sgemm").find());
    }
}
