package casp.cli;

import casp.io.BadInputException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The verdict of the regression gate: JMH results (JMH's JSON) against a baseline's, after
 * normalising by the machine-speed probe both runs measured.
 *
 * <p>Each benchmark's score is the mean of its measurement iterations with a 95% Student-t
 * confidence interval computed from the raw iteration scores (JMH's own error is a 99.9%
 * interval, too wide at the 3-5 iterations a gate can afford). The probe (a STREAM triad and a
 * scalar FMA loop) gives the machine factor f = geometric mean of now / baseline over its
 * benchmarks; a time measured now is divided by f (a rate multiplied), so a run on a busier or
 * slower-clocked machine is compared at the baseline's speed. Ratios are costs, now / baseline:
 * > 1 when slower (for a rate the ratio is inverted).
 *
 * <p>A baseline holds one or more recorded runs of the unchanged code (each benchmark in a JVM
 * fork of its own per run). An interval from one fork's iterations misses what changes between
 * forks (JIT decisions, memory layout) and between minutes of a shared machine, so the runs
 * measure it: each benchmark's noise band is (slowest run / fastest run) - 1 of its run means,
 * each run normalised by its own probe. A benchmark is flagged slower when even the favourable end
 * of its interval now, divided by the slowest recorded run's unfavourable end, exceeds its limit
 * 1 + max(threshold, bandFactor x band): slower than every recorded run by more than those runs
 * differed among themselves (and by at least the threshold). With one recorded run the band is 0
 * and the rule is (now - e_now) / (base + e_base) > 1 + threshold.
 *
 * <p>Allocation (JMH's -prof gc, gc.alloc.rate.norm in bytes per operation) is shown beside the
 * times and gated separately: a benchmark whose baseline runs all allocated under 1 KiB per
 * operation is flagged when it now allocates more than 1 KiB more than the most of them (the
 * decode path must stay allocation-free).
 */
final class JmhRegression {
    private JmhRegression() {}

    /** Benchmarks whose scores measure the machine, not the code. */
    static final String PROBE_CLASS = "MachineProbeBenchmark";
    static final String ALLOC_METRIC = "gc.alloc.rate.norm";
    /** Allocation per operation that the gate treats as "none" (JMH's counters are not exact to the byte). */
    static final double ALLOC_SLACK_BYTES = 1024;
    /** The "format" field of a baseline file that holds several runs. */
    static final String BASELINE_FORMAT = "casp-jmh-baseline";

    /** One benchmark's result: mean score, 95% CI half-width, unit, allocation per op (NaN if not profiled). */
    record Score(String key, double mean, double halfWidth, int samples, String unit, double allocBytes) {
        boolean isTime() {
            return unit.endsWith("/op");
        }

        /** Time per operation (a rate inverted), at the mean and at the low and high ends of the interval. */
        double cost() {
            return isTime() ? mean : 1 / mean;
        }

        double costLow() {
            return isTime() ? mean - halfWidth : 1 / (mean + halfWidth);
        }

        double costHigh() {
            if (isTime()) return mean + halfWidth;
            return mean > halfWidth ? 1 / (mean - halfWidth) : Double.POSITIVE_INFINITY;
        }

        /** This score as it would read on a machine f times faster (times divided by f, rates multiplied). */
        Score atMachineFactor(double f) {
            double scale = isTime() ? 1 / f : f;
            return new Score(key, mean * scale, halfWidth * scale, samples, unit, allocBytes);
        }
    }

    /**
     * A benchmark in the baseline: the median of its recorded runs' means (normalised), the
     * fastest run's low and the slowest run's high interval end (as costs), its noise band and the
     * most it allocated per operation.
     */
    record Reference(Score median, double fastestLow, double slowestHigh, double band, int runs, double allocBytes) {}

    /** One row of the table. limit: the ratio low end above which the benchmark is slower. */
    record Row(String key, Reference baseline, Score now, double ratio, double ratioLow, double ratioHigh, double limit, Verdict verdict) {}

    enum Verdict { OK, SLOWER, FASTER, ALLOCATES, NEW, MISSING, PROBE }

    record Report(List<Row> rows, double machineFactor, double threshold, double bandFactor, int baselineRuns) {
        int regressions() {
            int n = 0;
            for (Row r : rows) if (r.verdict == Verdict.SLOWER || r.verdict == Verdict.ALLOCATES) n++;
            return n;
        }
    }

    /** Reads a JMH JSON result file (an array of benchmark results); keys are benchmark + sorted params. */
    static Map<String, Score> read(Path file) {
        return parseRun(file, readJson(file, "a JMH JSON result file"));
    }

    /**
     * Reads a baseline: a JMH JSON result file (one recorded run) or an object
     * {"format": "casp-jmh-baseline", "runs": [run, ...]} whose runs are JMH result arrays.
     */
    static List<Map<String, Score>> readBaseline(Path file) {
        JsonNode root = readJson(file, "a baseline");
        if (root.isArray()) return List.of(parseRun(file, root));
        JsonNode runs = root.get("runs");
        if (!BASELINE_FORMAT.equals(root.path("format").asText()) || runs == null || !runs.isArray() || runs.isEmpty())
            throw new BadInputException(file + ": not a baseline (a JMH JSON array, or {\"format\": \"" + BASELINE_FORMAT + "\", \"runs\": [...]})");
        List<Map<String, Score>> out = new ArrayList<>();
        for (JsonNode run : runs) out.add(parseRun(file, run));
        return out;
    }

    private static JsonNode readJson(Path file, String what) {
        try {
            JsonNode root = new ObjectMapper().readTree(file.toFile());
            if (root == null) throw new BadInputException(file + ": not " + what + " (empty)");
            return root;
        } catch (IOException e) {
            throw new BadInputException(file + ": not " + what + ": " + e.getMessage());
        }
    }

    private static Map<String, Score> parseRun(Path file, JsonNode root) {
        if (!root.isArray()) throw new BadInputException(file + ": not a JMH JSON result file (expected an array)");
        Map<String, Score> out = new LinkedHashMap<>();
        for (JsonNode b : root) {
            JsonNode name = b.get("benchmark"), metric = b.get("primaryMetric");
            if (name == null || metric == null || metric.get("score") == null)
                throw new BadInputException(file + ": an entry lacks \"benchmark\" or \"primaryMetric.score\"");
            String key = key(name.asText(), b.get("params"));
            List<Double> raw = new ArrayList<>();
            JsonNode forks = metric.get("rawData");
            if (forks != null) for (JsonNode fork : forks) for (JsonNode v : fork) raw.add(v.asDouble());
            double mean = metric.get("score").asDouble();
            double half = raw.size() >= 2 ? halfWidth95(raw) : Double.POSITIVE_INFINITY;
            double alloc = Double.NaN;
            JsonNode sec = b.get("secondaryMetrics");
            if (sec != null && sec.get(ALLOC_METRIC) != null) alloc = sec.get(ALLOC_METRIC).get("score").asDouble();
            String unit = metric.get("scoreUnit") == null ? "" : metric.get("scoreUnit").asText();
            out.put(key, new Score(key, mean, half, raw.size(), unit, alloc));
        }
        return out;
    }

    /**
     * Writes a baseline of several runs (JMH JSON result files) to target, through a temporary file:
     * each entry keeps its name, parameters, primary metric with raw scores and allocation per operation.
     */
    static void writeBaseline(List<Path> runFiles, Path target) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("format", BASELINE_FORMAT);
        ArrayNode runs = root.putArray("runs");
        for (Path f : runFiles) {
            JsonNode run = readJson(f, "a JMH JSON result file");
            parseRun(f, run); // checks the file before anything is written
            ArrayNode kept = runs.addArray();
            for (JsonNode b : run) {
                ObjectNode e = kept.addObject();
                e.set("benchmark", b.get("benchmark"));
                if (b.get("params") != null) e.set("params", b.get("params"));
                ObjectNode metric = e.putObject("primaryMetric");
                for (String field : List.of("score", "scoreUnit", "rawData"))
                    if (b.get("primaryMetric").get(field) != null) metric.set(field, b.get("primaryMetric").get(field));
                JsonNode alloc = b.path("secondaryMetrics").get(ALLOC_METRIC);
                if (alloc != null) e.putObject("secondaryMetrics").putObject(ALLOC_METRIC).set("score", alloc.get("score"));
            }
        }
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        json.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), root);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * "casp.model.LinearBenchmark.forward" + {kind: gptq2, rows: 1} -> "LinearBenchmark.forward kind=gptq2 rows=1":
     * without the package, so a benchmark class that moves between packages keeps its baseline.
     */
    static String key(String benchmark, JsonNode params) {
        int method = benchmark.lastIndexOf('.');
        String name = benchmark.substring(benchmark.lastIndexOf('.', method - 1) + 1);
        if (params == null || params.isEmpty()) return name;
        Map<String, String> sorted = new TreeMap<>();
        params.fields().forEachRemaining(e -> sorted.put(e.getKey(), e.getValue().asText()));
        StringBuilder sb = new StringBuilder(name);
        sorted.forEach((k, v) -> sb.append(' ').append(k).append('=').append(v));
        return sb.toString();
    }

    /** Half-width of the 95% Student-t confidence interval of the mean of xs (at least 2 values). */
    static double halfWidth95(List<Double> xs) {
        int n = xs.size();
        double mean = 0;
        for (double x : xs) mean += x;
        mean /= n;
        double ss = 0;
        for (double x : xs) ss += (x - mean) * (x - mean);
        double sd = Math.sqrt(ss / (n - 1));
        return studentT975(n - 1) * sd / Math.sqrt(n);
    }

    /** The 97.5% quantile of Student's t with df degrees of freedom (table to 30, then 1.96 + 2.4 / df). */
    static double studentT975(int df) {
        double[] table = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
        if (df < 1) throw new IllegalArgumentException("degrees of freedom must be >= 1, got " + df);
        return df <= table.length ? table[df - 1] : 1.96 + 2.4 / df;
    }

    /**
     * How much slower the machine ran now than in the reference run: the geometric mean over the
     * probe benchmarks of (time now / time reference); 1 when either run lacks the probe.
     */
    static double machineFactor(Map<String, Score> reference, Map<String, Score> now) {
        double logSum = 0;
        int n = 0;
        for (Score s : now.values()) {
            if (!isProbe(s.key())) continue;
            Score b = reference.get(s.key());
            if (b == null || !(b.mean() > 0) || !(s.mean() > 0)) continue;
            logSum += Math.log(s.cost() / b.cost());
            n++;
        }
        return n == 0 ? 1 : Math.exp(logSum / n);
    }

    static boolean isProbe(String key) {
        return key.contains(PROBE_CLASS);
    }

    /** The probe scores of the baseline's machine: each probe benchmark's median over the recorded runs. */
    static Map<String, Score> probeReference(List<Map<String, Score>> runs) {
        Map<String, List<Score>> byKey = new LinkedHashMap<>();
        for (Map<String, Score> run : runs)
            for (Score s : run.values()) if (isProbe(s.key())) byKey.computeIfAbsent(s.key(), k -> new ArrayList<>()).add(s);
        Map<String, Score> out = new LinkedHashMap<>();
        byKey.forEach((k, scores) -> out.put(k, medianByCost(scores)));
        return out;
    }

    /** The score whose cost is the median (the lower middle one of an even count). */
    private static Score medianByCost(List<Score> scores) {
        List<Score> sorted = new ArrayList<>(scores);
        sorted.sort(Comparator.comparingDouble(Score::cost));
        return sorted.get((sorted.size() - 1) / 2);
    }

    /**
     * Each benchmark of the recorded runs as the gate compares with it: every run normalised by its
     * own machine factor against the runs' probe reference (unless normalise is false).
     */
    static Map<String, Reference> references(List<Map<String, Score>> runs, boolean normalise) {
        Map<String, Score> probe = probeReference(runs);
        Map<String, List<Score>> byKey = new LinkedHashMap<>();
        for (Map<String, Score> run : runs) {
            double f = normalise ? machineFactor(probe, run) : 1;
            for (Score s : run.values()) {
                Score scaled = isProbe(s.key()) ? s : s.atMachineFactor(f);
                byKey.computeIfAbsent(s.key(), k -> new ArrayList<>()).add(scaled);
            }
        }
        Map<String, Reference> out = new LinkedHashMap<>();
        byKey.forEach((key, scores) -> {
            double fastestLow = Double.POSITIVE_INFINITY, slowestHigh = Double.NEGATIVE_INFINITY;
            double minCost = Double.POSITIVE_INFINITY, maxCost = Double.NEGATIVE_INFINITY, alloc = Double.NaN;
            for (Score s : scores) {
                fastestLow = Math.min(fastestLow, s.costLow());
                slowestHigh = Math.max(slowestHigh, s.costHigh());
                minCost = Math.min(minCost, s.cost());
                maxCost = Math.max(maxCost, s.cost());
                if (!Double.isNaN(s.allocBytes())) alloc = Double.isNaN(alloc) ? s.allocBytes() : Math.max(alloc, s.allocBytes());
            }
            out.put(key, new Reference(medianByCost(scores), fastestLow, slowestHigh, maxCost / minCost - 1, scores.size(), alloc));
        });
        return out;
    }

    /**
     * The run now with each benchmark that was run again replaced by its re-run where that was
     * faster (the lower cost): interference from other processes only ever slows a benchmark down.
     */
    static Map<String, Score> fasterOf(Map<String, Score> now, Map<String, Score> again) {
        Map<String, Score> out = new LinkedHashMap<>(now);
        for (Score s : again.values()) {
            Score first = out.get(s.key());
            if (first == null || s.cost() < first.cost()) out.put(s.key(), s);
        }
        return out;
    }

    /** A one-run baseline (a plain JMH result) compared at bandFactor 0. */
    static Report compare(Map<String, Score> baseline, Map<String, Score> now, double threshold, boolean normalise) {
        return compare(List.of(baseline), now, threshold, 0, normalise);
    }

    /**
     * The gate: each benchmark of now against the baseline's recorded runs (see the class comment),
     * with the limit 1 + max(threshold, bandFactor x band) on the ratio's favourable end.
     */
    static Report compare(List<Map<String, Score>> baselineRuns, Map<String, Score> now, double threshold, double bandFactor, boolean normalise) {
        double f = normalise ? machineFactor(probeReference(baselineRuns), now) : 1;
        Map<String, Reference> refs = references(baselineRuns, normalise);
        List<Row> rows = new ArrayList<>();
        for (Score s : now.values()) {
            Reference b = refs.get(s.key());
            if (isProbe(s.key())) {
                double r = b == null ? Double.NaN : s.cost() / b.median().cost();
                rows.add(new Row(s.key(), b, s, r, Double.NaN, Double.NaN, Double.NaN, Verdict.PROBE));
                continue;
            }
            if (b == null) {
                rows.add(new Row(s.key(), null, s, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Verdict.NEW));
                continue;
            }
            Score n = s.atMachineFactor(f);
            double limit = 1 + Math.max(threshold, bandFactor * b.band());
            double ratio = n.cost() / b.median().cost();
            double low = n.costLow() / b.slowestHigh();
            double high = b.fastestLow() > 0 ? n.costHigh() / b.fastestLow() : Double.POSITIVE_INFINITY;
            if (Double.isNaN(low)) low = Double.NEGATIVE_INFINITY;
            Verdict v;
            if (low > limit) v = Verdict.SLOWER;
            else if (allocates(b.allocBytes(), n.allocBytes())) v = Verdict.ALLOCATES;
            else if (high < 1 / limit) v = Verdict.FASTER;
            else v = Verdict.OK;
            rows.add(new Row(s.key(), b, n, ratio, low, high, limit, v));
        }
        refs.forEach((key, b) -> {
            if (!now.containsKey(key) && !isProbe(key))
                rows.add(new Row(key, b, null, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Verdict.MISSING));
        });
        return new Report(rows, f, threshold, bandFactor, baselineRuns.size());
    }

    /** A benchmark that allocated (almost) nothing per operation in every baseline run now allocates. */
    static boolean allocates(double baselineBytes, double nowBytes) {
        if (Double.isNaN(baselineBytes) || Double.isNaN(nowBytes)) return false;
        return baselineBytes < ALLOC_SLACK_BYTES && nowBytes > baselineBytes + ALLOC_SLACK_BYTES;
    }

    /**
     * The table: benchmark, unit, baseline (median run), its noise band, now (normalised), ratio,
     * the ratio's range from the favourable to the unfavourable ends, the limit, allocation, verdict.
     */
    static String table(Report report) {
        int w = "benchmark".length();
        for (Row r : report.rows()) w = Math.max(w, r.key().length());
        StringBuilder sb = new StringBuilder();
        String head = "%-" + w + "s  %-6s %18s %6s %18s %7s %17s %6s %11s  %s%n";
        sb.append(String.format(Locale.ROOT, head, "benchmark", "unit", "baseline", "band", "now", "ratio", "ratio range", "limit",
                "alloc B/op", "verdict"));
        for (Row r : report.rows()) {
            Score any = r.now() != null ? r.now() : r.baseline().median();
            sb.append(String.format(Locale.ROOT, head, r.key(), any.unit(), r.baseline() == null ? "-" : score(r.baseline().median()),
                    r.baseline() == null || r.baseline().runs() < 2 ? "-" : String.format(Locale.ROOT, "%.0f%%", 100 * r.baseline().band()),
                    score(r.now()),
                    Double.isNaN(r.ratio()) ? "-" : String.format(Locale.ROOT, "%.3f", r.ratio()),
                    Double.isNaN(r.ratioLow()) ? "-" : String.format(Locale.ROOT, "[%.3f, %.3f]", r.ratioLow(), r.ratioHigh()),
                    Double.isNaN(r.limit()) ? "-" : String.format(Locale.ROOT, "%.3f", r.limit()),
                    r.now() == null || Double.isNaN(r.now().allocBytes()) ? "-" : String.format(Locale.ROOT, "%.0f", r.now().allocBytes()),
                    r.verdict() == Verdict.OK ? "" : r.verdict().name().toLowerCase(Locale.ROOT)));
        }
        return sb.toString();
    }

    private static String score(Score s) {
        if (s == null) return "-";
        String half = Double.isInfinite(s.halfWidth()) ? "?" : format(s.halfWidth());
        return format(s.mean()) + " ± " + half;
    }

    private static String format(double v) {
        double a = Math.abs(v);
        if (a >= 1000) return String.format(Locale.ROOT, "%.0f", v);
        if (a >= 10) return String.format(Locale.ROOT, "%.1f", v);
        if (a >= 0.1) return String.format(Locale.ROOT, "%.3f", v);
        return String.format(Locale.ROOT, "%.3g", v);
    }

    /** One benchmark's scores over several runs (each normalised by its own machine factor). */
    record Spread(String key, String unit, int runs, double mean, double min, double max, double cv) {}

    /**
     * The spread of each benchmark over runs of unchanged code: mean, min, max and coefficient of
     * variation of its scores, each run's scores normalised by that run's machine factor against
     * the probe scores of probeReference (e.g. {@link #probeReference} of a baseline) unless
     * normalise is false.
     */
    static List<Spread> spread(Map<String, Score> probeReference, List<Map<String, Score>> runs, boolean normalise) {
        Map<String, List<Double>> values = new LinkedHashMap<>();
        Map<String, String> units = new LinkedHashMap<>();
        for (Map<String, Score> run : runs) {
            double f = normalise ? machineFactor(probeReference, run) : 1;
            for (Score s : run.values()) {
                double scale = isProbe(s.key()) ? 1 : s.isTime() ? 1 / f : f;
                values.computeIfAbsent(s.key(), k -> new ArrayList<>()).add(s.mean() * scale);
                units.put(s.key(), s.unit());
            }
        }
        List<Spread> out = new ArrayList<>();
        values.forEach((key, xs) -> {
            double mean = 0, min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
            for (double x : xs) {
                mean += x;
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            mean /= xs.size();
            double ss = 0;
            for (double x : xs) ss += (x - mean) * (x - mean);
            double cv = xs.size() > 1 ? Math.sqrt(ss / (xs.size() - 1)) / mean : 0;
            out.add(new Spread(key, units.get(key), xs.size(), mean, min, max, cv));
        });
        return out;
    }

    static String spreadTable(List<Spread> rows) {
        int w = "benchmark".length();
        for (Spread r : rows) w = Math.max(w, r.key().length());
        String head = "%-" + w + "s  %-6s %4s %10s %10s %10s %7s %8s%n";
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, head, "benchmark", "unit", "runs", "mean", "min", "max", "cv %", "max/min"));
        for (Spread r : rows) {
            sb.append(String.format(Locale.ROOT, head, r.key(), r.unit(), r.runs(), format(r.mean()), format(r.min()), format(r.max()),
                    String.format(Locale.ROOT, "%.1f", 100 * r.cv()), String.format(Locale.ROOT, "%.3f", r.max() / r.min())));
        }
        return sb.toString();
    }

    /** Concatenates JMH JSON result files (arrays) into one array file, as JMH would have written for one run. */
    static void merge(List<Path> parts, Path target) throws IOException {
        ObjectMapper json = new ObjectMapper();
        var all = json.createArrayNode();
        for (Path p : parts) {
            if (!Files.isRegularFile(p)) continue;
            JsonNode a = json.readTree(p.toFile());
            if (a != null && a.isArray()) all.addAll((ArrayNode) a);
        }
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        json.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), all);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
