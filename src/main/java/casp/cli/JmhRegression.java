package casp.cli;

import casp.io.BadInputException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * slower-clocked machine is compared at the baseline's speed. The ratio now / baseline is > 1 when
 * slower (for rates too: their ratio is inverted). A benchmark is flagged when even the end of its
 * interval most favourable to "no regression", (now - e_now) / (base + e_base), is above 1 + the
 * threshold: slower than the threshold beyond both error bars.
 *
 * <p>Allocation (JMH's -prof gc, gc.alloc.rate.norm in bytes per operation) is shown beside the
 * times and gated separately: a benchmark whose baseline allocated under 1 KiB per operation is
 * flagged when it now allocates more than 1 KiB more (the decode path must stay allocation-free).
 */
final class JmhRegression {
    private JmhRegression() {}

    /** Benchmarks whose scores measure the machine, not the code. */
    static final String PROBE_CLASS = "MachineProbeBenchmark";
    static final String ALLOC_METRIC = "gc.alloc.rate.norm";
    /** Allocation per operation that the gate treats as "none" (JMH's counters are not exact to the byte). */
    static final double ALLOC_SLACK_BYTES = 1024;

    /** One benchmark's result: mean score, 95% CI half-width, unit, allocation per op (NaN if not profiled). */
    record Score(String key, double mean, double halfWidth, int samples, String unit, double allocBytes) {
        boolean isTime() {
            return unit.endsWith("/op");
        }
    }

    /** One row of the table. */
    record Row(String key, Score baseline, Score now, double ratio, double ratioLow, double ratioHigh, Verdict verdict) {}

    enum Verdict { OK, SLOWER, FASTER, ALLOCATES, NEW, MISSING, PROBE }

    record Report(List<Row> rows, double machineFactor, double threshold) {
        int regressions() {
            int n = 0;
            for (Row r : rows) if (r.verdict == Verdict.SLOWER || r.verdict == Verdict.ALLOCATES) n++;
            return n;
        }
    }

    /** Reads a JMH JSON result file (an array of benchmark results); keys are benchmark + sorted params. */
    static Map<String, Score> read(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new BadInputException(file + ": not a JMH JSON result file: " + e.getMessage());
        }
        if (root == null || !root.isArray()) throw new BadInputException(file + ": not a JMH JSON result file (expected an array)");
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
     * How much slower the machine ran now than in the baseline's run: the geometric mean over the
     * probe benchmarks of (time now / time baseline); 1 when either run lacks the probe.
     */
    static double machineFactor(Map<String, Score> baseline, Map<String, Score> now) {
        double logSum = 0;
        int n = 0;
        for (Score s : now.values()) {
            if (!s.key().contains(PROBE_CLASS)) continue;
            Score b = baseline.get(s.key());
            if (b == null || !(b.mean() > 0) || !(s.mean() > 0)) continue;
            double slower = s.isTime() ? s.mean() / b.mean() : b.mean() / s.mean();
            logSum += Math.log(slower);
            n++;
        }
        return n == 0 ? 1 : Math.exp(logSum / n);
    }

    static Report compare(Map<String, Score> baseline, Map<String, Score> now, double threshold, boolean normalise) {
        double f = normalise ? machineFactor(baseline, now) : 1;
        List<Row> rows = new ArrayList<>();
        for (Score s : now.values()) {
            Score b = baseline.get(s.key());
            if (s.key().contains(PROBE_CLASS)) {
                double r = b == null ? Double.NaN : ratio(s.mean(), b.mean(), s.isTime());
                rows.add(new Row(s.key(), b, s, r, Double.NaN, Double.NaN, Verdict.PROBE));
                continue;
            }
            if (b == null) {
                rows.add(new Row(s.key(), null, s, Double.NaN, Double.NaN, Double.NaN, Verdict.NEW));
                continue;
            }
            // now at the baseline machine's speed: times divided by f, rates multiplied
            double scale = s.isTime() ? 1 / f : f;
            double nowMean = s.mean() * scale, nowHalf = s.halfWidth() * scale;
            double r = ratio(nowMean, b.mean(), s.isTime());
            double low, high;
            if (s.isTime()) {
                low = (nowMean - nowHalf) / (b.mean() + b.halfWidth());
                high = b.mean() > b.halfWidth() ? (nowMean + nowHalf) / (b.mean() - b.halfWidth()) : Double.POSITIVE_INFINITY;
            } else { // a rate: slower means smaller
                low = (b.mean() - b.halfWidth()) / (nowMean + nowHalf);
                high = nowMean > nowHalf ? (b.mean() + b.halfWidth()) / (nowMean - nowHalf) : Double.POSITIVE_INFINITY;
            }
            if (Double.isNaN(low)) low = Double.NEGATIVE_INFINITY;
            Verdict v;
            if (low > 1 + threshold) v = Verdict.SLOWER;
            else if (allocates(b, s)) v = Verdict.ALLOCATES;
            else if (high < 1 / (1 + threshold)) v = Verdict.FASTER;
            else v = Verdict.OK;
            rows.add(new Row(s.key(), b, new Score(s.key(), nowMean, nowHalf, s.samples(), s.unit(), s.allocBytes()), r, low, high, v));
        }
        for (Score b : baseline.values()) {
            if (!now.containsKey(b.key()) && !b.key().contains(PROBE_CLASS))
                rows.add(new Row(b.key(), b, null, Double.NaN, Double.NaN, Double.NaN, Verdict.MISSING));
        }
        return new Report(rows, f, threshold);
    }

    /** A benchmark that allocated (almost) nothing per operation now allocates. */
    static boolean allocates(Score baseline, Score now) {
        if (Double.isNaN(baseline.allocBytes()) || Double.isNaN(now.allocBytes())) return false;
        return baseline.allocBytes() < ALLOC_SLACK_BYTES && now.allocBytes() > baseline.allocBytes() + ALLOC_SLACK_BYTES;
    }

    static double ratio(double now, double baseline, boolean time) {
        return time ? now / baseline : baseline / now;
    }

    /** The table: benchmark, unit, baseline, now (normalised), ratio, its 95% interval, allocation, verdict. */
    static String table(Report report) {
        int w = "benchmark".length();
        for (Row r : report.rows()) w = Math.max(w, r.key().length());
        StringBuilder sb = new StringBuilder();
        String head = "%-" + w + "s  %-6s %18s %18s %7s %17s %11s  %s%n";
        sb.append(String.format(Locale.ROOT, head, "benchmark", "unit", "baseline", "now", "ratio", "ratio 95% CI", "alloc B/op", "verdict"));
        for (Row r : report.rows()) {
            Score any = r.now() != null ? r.now() : r.baseline();
            sb.append(String.format(Locale.ROOT, head, r.key(), any.unit(), score(r.baseline()), score(r.now()),
                    Double.isNaN(r.ratio()) ? "-" : String.format(Locale.ROOT, "%.3f", r.ratio()),
                    Double.isNaN(r.ratioLow()) ? "-" : String.format(Locale.ROOT, "[%.3f, %.3f]", r.ratioLow(), r.ratioHigh()),
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
     * reference (the baseline, or the first run) unless normalise is false.
     */
    static List<Spread> spread(Map<String, Score> reference, List<Map<String, Score>> runs, boolean normalise) {
        Map<String, List<Double>> values = new LinkedHashMap<>();
        Map<String, String> units = new LinkedHashMap<>();
        for (Map<String, Score> run : runs) {
            double f = normalise ? machineFactor(reference, run) : 1;
            for (Score s : run.values()) {
                double scale = s.key().contains(PROBE_CLASS) ? 1 : s.isTime() ? 1 / f : f;
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
            if (a != null && a.isArray()) all.addAll((com.fasterxml.jackson.databind.node.ArrayNode) a);
        }
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        json.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), all);
        Files.move(tmp, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
}
