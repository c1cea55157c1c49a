package casp.cli;

import casp.io.BadInputException;
import casp.kernel.VectorSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code casp bench regress}: runs the JMH suite (target/benchmarks.jar, built by
 * {@code ./mvnw -Pjmh -DskipTests package}), compares it with the committed baseline of this
 * machine class (jmh/baselines/CPU-WIDTHbit-MODE.json) after normalising by the machine-speed
 * probe measured in the same run, prints one table and exits 1 when a benchmark got slower than
 * the threshold beyond its error bars (see {@link JmhRegression}). --quick runs a curated subset
 * at small sizes with short iterations (a few minutes); the full suite runs every benchmark with its
 * own settings (the real gate). Every run uses JMH's -prof gc, so allocation per operation is in
 * the results and the table.
 */
@Command(name = "regress", mixinStandardHelpOptions = true,
        description = "Run the JMH suite, compare it with this machine class's baseline, exit 1 on a slowdown.")
public final class BenchRegressCommand implements Callable<Integer> {

    /**
     * One JMH invocation of the quick suite: a benchmark regex (class names, whatever their
     * package), its iteration options in the quick pass (empty: {@link #QUICK_ITERATIONS}) and
     * parameter overrides.
     */
    record Part(String regex, List<String> quickIterations, String... params) {
        Part(String regex, String... params) {
            this(regex, List.of(), params);
        }
    }

    /** Probe first, so the machine factor is measured at the start of the run. */
    static final Part PROBE = new Part("\\.MachineProbeBenchmark\\.");

    /** The quick suite: every hot path at a size that keeps the whole pass to a few minutes. */
    static final List<Part> QUICK = List.of(
            PROBE,
            new Part("\\.GemmBenchmark\\.sgemm$", "n=1024"),
            new Part("\\.CholeskyBenchmark\\.", "n=1024"),
            new Part("\\.SvdBenchmark\\.svd$", "n=256"),
            new Part("\\.RsvdBenchmark\\.rsvd$", "n=1024", "rank=128"),
            new Part("\\.DequantMatvecBenchmark\\.", "bits=2", "size=4096"),
            // not aqlmCodebookSolve: its joint system has 4096 unknowns at any layer size (~10 s a call here).
            // 6 s of warm-up: a QuIP# call takes ~230 ms once compiled and ran 1.5x that 1.5 s into a fork
            // (iterations of 300 ms: at least one call each).
            new Part("\\.QuantizerBenchmark\\.(gptq|quip|aqlmBeamSearch)$", List.of("-wi", "6", "-w", "1s", "-i", "10", "-r", "300ms", "-f", "1"),
                    "size=512"),
            new Part("\\.CalibrationBenchmark\\.", "size=1024"),
            new Part("\\.LinearBenchmark\\.", "rows=1", "size=4096"),
            // 8 s of warm-up: a step takes ~40 ms, and in 1.5 s the kernels still ran C1 code (2 MB of boxed vectors per step)
            new Part("\\.DecodeContextBenchmark\\.", List.of("-wi", "8", "-w", "1s", "-i", "10", "-r", "200ms", "-f", "1")),
            new Part("\\.ClipLayerBenchmark\\."),
            new Part("\\.TokenizerBenchmark\\."),
            new Part("\\.SafeTensorsOpenBenchmark\\."));

    /** The smoke run (CI): a few cheap benchmarks, one short iteration each, to exercise the harness. */
    static final List<Part> SMOKE = List.of(
            PROBE,
            new Part("\\.LinearBenchmark\\.", "rows=1", "size=1024", "kind=gptq2"),
            new Part("\\.TokenizerBenchmark\\.", "tokenizer=tiny-llava"),
            new Part("\\.SafeTensorsOpenBenchmark\\."));

    /** What JMH prints last when a regex matches no benchmark. */
    private static final String NO_MATCH = "No matching benchmarks";

    /**
     * Quick pass: 1.5 s of warm-up (C2 has compiled the Vector API kernels by then on an idle
     * core), then ten 200 ms iterations: the 95% interval narrows with the Student-t quantile
     * (2.26 at 9 degrees of freedom against 4.30 at 2) and with the square root of the count, so
     * a slowdown of a few tens of percent clears the threshold where three iterations did not.
     */
    static final List<String> QUICK_ITERATIONS = List.of("-wi", "3", "-w", "500ms", "-i", "10", "-r", "200ms", "-f", "1");
    static final List<String> SMOKE_ITERATIONS = List.of("-wi", "0", "-i", "1", "-r", "100ms", "-f", "1");

    @Option(names = "--quick", description = "Run the quick suite (small sizes, short iterations: a few minutes) instead of the full one.")
    boolean quick;

    @Option(names = "--smoke", description = "Run a few benchmarks once each (checks the harness; the timings mean nothing).")
    boolean smoke;

    @Option(names = "--jar", defaultValue = "target/benchmarks.jar", description = "The JMH jar (default ${DEFAULT-VALUE}; build: ./mvnw -Pjmh -DskipTests package).")
    Path jar;

    @Option(names = "--baseline", description = "Baseline JMH JSON (default: jmh/baselines/<machine class>-<quick|full>.json).")
    Path baseline;

    @Option(names = "--results", arity = "1..*", paramLabel = "RESULTS",
            description = "Compare this JMH JSON instead of running the suite (with --write-baseline: record these runs).")
    List<Path> results;

    @Option(names = "--runs", defaultValue = "1",
            description = "With --write-baseline: run the suite this many times and record every run (default ${DEFAULT-VALUE}); the runs give each benchmark its noise band.")
    int runs;

    @Option(names = "--confirm", defaultValue = "1",
            description = "Re-run the benchmarks a run flags, in new forks, up to this many times; each keeps its faster run (default ${DEFAULT-VALUE}; 0: no re-run).")
    int confirm;

    @Option(names = "--band-factor", defaultValue = "2",
            description = "A benchmark's limit is 1 + max(threshold, this x its noise band in the baseline) (default ${DEFAULT-VALUE}).")
    double bandFactor;

    @Option(names = "--out", defaultValue = "target/jmh", description = "Folder for the run's JSON and JMH's log (default ${DEFAULT-VALUE}).")
    Path out;

    @Option(names = "--threshold", defaultValue = "0.10", description = "Slowdown beyond the error bars that fails the gate (default ${DEFAULT-VALUE} = 10%%).")
    double threshold;

    @Option(names = "--include", description = "Run only the benchmarks whose JMH name matches this regex (with the parts of the suite they belong to).")
    String include;

    @Option(names = "--jvm-arg", description = "Extra JVM argument for the benchmark forks (repeatable), e.g. -Dcasp.matvec.slots=true.")
    List<String> jvmArgs = new ArrayList<>();

    @Option(names = "--no-normalise", description = "Compare raw scores (no machine-speed probe factor).")
    boolean noNormalise;

    @Option(names = "--no-gate", description = "Print the table but exit 0 whatever it says (CI smoke runs).")
    boolean noGate;

    @Option(names = "--spread", arity = "1..*", paramLabel = "RESULTS",
            description = "Print the spread of each benchmark over these JMH JSON files (runs of unchanged code), normalised by each run's probe; runs nothing.")
    List<Path> spreadOf;

    @Option(names = "--write-baseline", description = "Record this run (or --runs N runs, or the --results files) as the baseline (refresh it after a deliberate change).")
    boolean writeBaseline;

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (!(threshold >= 0) || Double.isInfinite(threshold)) throw new BadInputException("--threshold must be >= 0, got " + threshold);
        if (!(bandFactor >= 0) || Double.isInfinite(bandFactor)) throw new BadInputException("--band-factor must be >= 0, got " + bandFactor);
        if (quick && smoke) throw new BadInputException("--quick and --smoke: choose one");
        if (runs < 1) throw new BadInputException("--runs must be >= 1, got " + runs);
        if (confirm < 0) throw new BadInputException("--confirm must be >= 0, got " + confirm);
        if (runs > 1 && !writeBaseline) throw new BadInputException("--runs " + runs + ": only with --write-baseline (a comparison runs the suite once)");
        if (runs > 1 && results != null) throw new BadInputException("--runs and --results: choose one");
        if (results != null && results.size() > 1 && !writeBaseline)
            throw new BadInputException("--results: one file to compare (several only with --write-baseline)");
        String mode = smoke ? "smoke" : quick ? "quick" : "full";
        if (spreadOf != null) return printSpread(mode);
        List<Path> resultFiles = new ArrayList<>();
        if (results != null) {
            for (Path r : results) if (!Files.isRegularFile(r)) throw new BadInputException("--results " + r + ": no such file");
            resultFiles.addAll(results);
        } else {
            if (!Files.isRegularFile(jar)) {
                throw new BadInputException("--jar " + jar + ": no such file (build it: ./mvnw -Pjmh -DskipTests package)");
            }
            Files.createDirectories(out);
            String vectorLine = vectorWidth();
            System.out.println("vector width of the benchmark JVMs: " + vectorLine);
            Files.writeString(out.resolve(mode + "-machine.txt"), vectorLine + System.lineSeparator());
            for (int i = 1; i <= runs; i++) {
                if (runs > 1) System.out.printf(Locale.ROOT, "run %d of %d%n", i, runs);
                resultFiles.add(run(mode, runs > 1 ? mode + "-results-" + i + ".json" : mode + "-results.json", null));
            }
        }
        Path base = baseline != null ? baseline : Path.of("jmh", "baselines", machineClass() + "-" + mode + ".json");
        if (writeBaseline) {
            Files.createDirectories(base.toAbsolutePath().getParent());
            JmhRegression.writeBaseline(resultFiles, base);
            System.out.println("baseline written: " + base + " (" + resultFiles.size() + (resultFiles.size() == 1 ? " run)" : " runs)"));
            return 0;
        }
        Path resultFile = resultFiles.get(0);
        Map<String, JmhRegression.Score> now = JmhRegression.read(resultFile);
        if (!Files.isRegularFile(base)) {
            String msg = "no baseline " + base + " for this machine class (write one with --write-baseline)";
            if (noGate) {
                System.out.println(msg + "; results: " + resultFile);
                return 0;
            }
            throw new BadInputException(msg);
        }
        List<Map<String, JmhRegression.Score>> baseRuns = JmhRegression.readBaseline(base);
        JmhRegression.Report report = JmhRegression.compare(baseRuns, now, threshold, bandFactor, !noNormalise);
        // A slowdown of the code persists in a new fork; a neighbour's burst or an unlucky JIT outcome mostly does not.
        for (int c = 1; c <= confirm && results == null && report.regressions() > 0; c++) {
            List<String> flagged = new ArrayList<>();
            for (JmhRegression.Row r : report.rows())
                if (r.verdict() == JmhRegression.Verdict.SLOWER || r.verdict() == JmhRegression.Verdict.ALLOCATES) flagged.add(r.key());
            System.out.printf(Locale.ROOT, "re-running %d flagged benchmark%s in new forks (%d of %d): %s%n",
                    flagged.size(), flagged.size() == 1 ? "" : "s", c, confirm, String.join("; ", flagged));
            Path again = run(mode, mode + "-confirm-" + c + ".json", methods(flagged));
            now = JmhRegression.fasterOf(now, JmhRegression.read(again));
            report = JmhRegression.compare(baseRuns, now, threshold, bandFactor, !noNormalise);
        }
        System.out.printf(Locale.ROOT, "baseline %s (%d recorded %s)%nresults  %s%nmachine factor %.3f (probe now / baseline; times divided by it)%n",
                base, report.baselineRuns(), report.baselineRuns() == 1 ? "run" : "runs", resultFile, report.machineFactor());
        System.out.printf(Locale.ROOT, "limit = 1 + max(threshold %.2f, %.1f x band); slower when the ratio range's low end exceeds it%n",
                threshold, bandFactor);
        System.out.print(JmhRegression.table(report));
        int bad = report.regressions();
        System.out.printf(Locale.ROOT, "%d of %d benchmarks slower than their limits beyond their 95%% intervals (or allocating)%s%n",
                bad, report.rows().size(), noGate ? " (not gating)" : "");
        return bad > 0 && !noGate ? 1 : 0;
    }

    private int printSpread(String mode) {
        List<Map<String, JmhRegression.Score>> spreadRuns = new ArrayList<>();
        for (Path p : spreadOf) {
            if (!Files.isRegularFile(p)) throw new BadInputException("--spread " + p + ": no such file");
            spreadRuns.add(JmhRegression.read(p));
        }
        Path base = baseline != null ? baseline : Path.of("jmh", "baselines", machineClass() + "-" + mode + ".json");
        boolean hasBase = Files.isRegularFile(base);
        Map<String, JmhRegression.Score> probe = hasBase ? JmhRegression.probeReference(JmhRegression.readBaseline(base)) : spreadRuns.get(0);
        System.out.println("probe reference: " + (hasBase ? base : spreadOf.get(0)));
        System.out.print(JmhRegression.spreadTable(JmhRegression.spread(probe, spreadRuns, !noNormalise)));
        return 0;
    }

    /**
     * Runs the parts of the suite, each a JMH invocation, and merges their JSON into out/resultName
     * (JMH's log beside it: quick-results-2.json, quick-jmh-2.log).
     */
    private Path run(String mode, String resultName, List<String> only) throws IOException, InterruptedException {
        List<Part> parts = new ArrayList<>(smoke ? SMOKE : quick ? QUICK : List.of(new Part("casp\\.")));
        // a re-run of a few benchmarks keeps the first run's probe, and runs only the parts that hold them
        if (only != null) parts.removeIf(p -> p == PROBE || only.stream().noneMatch(m -> Pattern.compile(p.regex()).matcher("casp." + m).find()));
        String filter = only != null ? methodsRegex(only) : include;
        List<String> iterations = smoke ? SMOKE_ITERATIONS : quick ? QUICK_ITERATIONS : List.of();
        Path log = out.resolve(resultName.replace("-results", "-jmh").replace(".json", ".log"));
        Files.deleteIfExists(log);
        List<Path> jsons = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            Part p = parts.get(i);
            String regex = filter == null || p == PROBE ? p.regex() : "(?=.*(?:" + filter + ")).*" + p.regex();
            Path json = out.resolve(mode + "-part" + i + ".json");
            Files.deleteIfExists(json);
            List<String> cmd = new ArrayList<>(List.of(javaBinary(), "--add-modules", "jdk.incubator.vector", "-jar", jar.toString(), regex,
                    "-prof", "gc", "-rf", "json", "-rff", json.toString()));
            for (String param : p.params()) cmd.addAll(List.of("-p", param));
            cmd.addAll(quick && !p.quickIterations().isEmpty() ? p.quickIterations() : iterations);
            // Prepend, not append: the benchmarks' own jvmArgsAppend (--add-modules, -Xmx) must stay.
            if (!jvmArgs.isEmpty()) cmd.addAll(List.of("-jvmArgsPrepend", String.join(" ", jvmArgs)));
            System.out.printf(Locale.ROOT, "[%d/%d] %s %s%n", i + 1, parts.size(), p.regex(), String.join(" ", p.params()));
            long logStart = Files.exists(log) ? Files.size(log) : 0;
            Process proc = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            int rc = proc.waitFor();
            if (filter != null && logSince(log, logStart).contains(NO_MATCH)) { // the filter left none in this part
                Files.deleteIfExists(json);
                continue;
            }
            if (rc != 0 || !Files.exists(json)) throw new BadInputException("JMH failed (exit " + rc + ") on " + p.regex() + ": see " + log);
            jsons.add(json);
        }
        Path merged = out.resolve(resultName);
        JmhRegression.merge(jsons, merged);
        for (Path j : jsons) Files.deleteIfExists(j);
        return merged;
    }

    /** The benchmark methods of table keys: "LinearBenchmark.forward kind=gptq2 rows=1" -> "LinearBenchmark.forward". */
    static List<String> methods(List<String> keys) {
        List<String> out = new ArrayList<>();
        for (String k : keys) {
            String m = k.split(" ")[0];
            if (!out.contains(m)) out.add(m);
        }
        return out;
    }

    /** A JMH regex matching exactly these benchmark methods (with every parameter value). */
    static String methodsRegex(List<String> methods) {
        List<String> quoted = new ArrayList<>();
        for (String m : methods) quoted.add(Pattern.quote(m));
        return "\\.(?:" + String.join("|", quoted) + ")$";
    }

    /** The text appended to log after byte offset start. */
    private static String logSince(Path log, long start) throws IOException {
        byte[] all = Files.readAllBytes(log);
        int from = (int) Math.min(start, all.length);
        return new String(all, from, all.length - from, java.nio.charset.StandardCharsets.UTF_8);
    }

    /** What the benchmark forks' JVM chooses, asked of a JVM started with the same flags. */
    private String vectorWidth() throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(javaBinary(), "--add-modules", "jdk.incubator.vector"));
        cmd.addAll(jvmArgs);
        cmd.addAll(List.of("-cp", jar.toString(), MachineInfo.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String text = new String(p.getInputStream().readAllBytes()).trim();
        p.waitFor();
        String[] lines = text.split("\n");
        return lines[lines.length - 1];
    }

    /** "intel-xeon-processor-512bit": the CPU model and the kernels' vector width in this JVM. */
    static String machineClass() {
        return MachineInfo.cpuSlug() + "-" + VectorSupport.bits() + "bit";
    }

    private static String javaBinary() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }
}
