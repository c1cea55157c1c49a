package casp;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The package graph of src/main/java, derived from the sources (imports and fully qualified
 * names): no package may use one of a higher layer (DESIGN.md's order: kernel, tensor and io,
 * model and synth (random shape twins), the quantization formats, compress, eval, report, cli), and
 * there are no cycles. The graph
 * is also written in docs/design.md between the package-graph markers; this test fails when that
 * copy is stale, and {@code -Dcasp.recordGraph=true} rewrites it.
 */
class PackageGraphTest {
    private static final Path SOURCES = Path.of("src/main/java");
    private static final Path DOC = Path.of("docs/design.md");
    private static final String START = "<!-- package-graph:start (written by PackageGraphTest) -->";
    private static final String END = "<!-- package-graph:end -->";

    /** Layer of each package, lowest first; a package may use packages of its own or a lower layer. */
    private static final Map<String, Integer> LAYER = Map.ofEntries(
            Map.entry("casp.kernel", 0),
            Map.entry("casp.tensor", 1),
            Map.entry("casp.io", 2),
            Map.entry("casp.model", 3),
            Map.entry("casp.synth", 3),
            Map.entry("casp.quant", 4),
            Map.entry("casp.quant.gptq", 5),
            Map.entry("casp.quant.quip", 5),
            Map.entry("casp.quant.aqlm", 5),
            Map.entry("casp.quant.lowrank", 6),
            Map.entry("casp.quant.registry", 7),
            Map.entry("casp.compress", 8),
            Map.entry("casp.eval", 9),
            Map.entry("casp.report", 10),
            Map.entry("casp.cli", 11));

    private static final Pattern QUALIFIED = Pattern.compile("\\bcasp((?:\\.[a-z][a-z0-9]*)+)\\.[A-Z]");

    /** Package -> the other casp packages its sources name. */
    static Map<String, Set<String>> graph() throws IOException {
        Map<String, Set<String>> g = new TreeMap<>();
        try (Stream<Path> files = Files.walk(SOURCES)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                String pkg = SOURCES.relativize(f.getParent()).toString().replace('/', '.').replace('\\', '.');
                Set<String> uses = g.computeIfAbsent(pkg, k -> new TreeSet<>());
                Matcher m = QUALIFIED.matcher(code(Files.readString(f)));
                while (m.find()) {
                    String used = "casp" + m.group(1);
                    if (!used.equals(pkg)) uses.add(used);
                }
            }
        }
        return g;
    }

    /** The source without comments and string or character literals (where package names are only text). */
    static String code(String s) {
        StringBuilder out = new StringBuilder(s.length());
        int i = 0, n = s.length();
        while (i < n) {
            char c = s.charAt(i);
            if (c == '/' && i + 1 < n && s.charAt(i + 1) == '/') {
                while (i < n && s.charAt(i) != '\n') i++;
            } else if (c == '/' && i + 1 < n && s.charAt(i + 1) == '*') {
                int e = s.indexOf("*/", i + 2);
                i = e < 0 ? n : e + 2;
            } else if (c == '"' && s.startsWith("\"\"\"", i)) {
                int e = s.indexOf("\"\"\"", i + 3);
                i = e < 0 ? n : e + 3;
            } else if (c == '"' || c == '\'') {
                i++;
                while (i < n && s.charAt(i) != c) i += s.charAt(i) == '\\' ? 2 : 1;
                i++;
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    @Test
    void noPackageUsesAHigherLayerAndThereAreNoCycles() throws IOException {
        Map<String, Set<String>> g = graph();
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, Set<String>> e : g.entrySet()) {
            Integer from = LAYER.get(e.getKey());
            if (from == null) {
                problems.add(e.getKey() + " has no layer in PackageGraphTest.LAYER");
                continue;
            }
            for (String to : e.getValue()) {
                Integer t = LAYER.get(to);
                if (t == null) problems.add(e.getKey() + " uses " + to + ", which has no layer");
                else if (t > from) problems.add(e.getKey() + " uses " + to + ", a higher layer");
            }
        }
        List<String> cycle = cycle(g);
        if (!cycle.isEmpty()) problems.add("cycle: " + String.join(" -> ", cycle));
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    @Test
    void theDesignDocShowsTheCurrentGraph() throws IOException {
        String block = START + "\n" + render(graph()) + END;
        String doc = Files.exists(DOC) ? Files.readString(DOC) : "";
        int a = doc.indexOf(START), b = doc.indexOf(END);
        if (Boolean.getBoolean("casp.recordGraph")) {
            String updated = a >= 0 && b > a ? doc.substring(0, a) + block + doc.substring(b + END.length()) : doc + "\n" + block + "\n";
            Files.writeString(DOC, updated);
            return;
        }
        if (a < 0 || b < a) fail(DOC + " has no package-graph block; run this test with -Dcasp.recordGraph=true");
        assertEquals(block, doc.substring(a, b + END.length()), DOC + " shows an old package graph; run this test with -Dcasp.recordGraph=true");
    }

    /** One line per package, lowest layer first: the package and what it uses. */
    static String render(Map<String, Set<String>> g) {
        StringBuilder sb = new StringBuilder("```\n");
        g.keySet().stream().sorted((x, y) -> LAYER.getOrDefault(x, 99).equals(LAYER.getOrDefault(y, 99)) ? x.compareTo(y)
                        : Integer.compare(LAYER.getOrDefault(x, 99), LAYER.getOrDefault(y, 99)))
                .forEach(p -> sb.append(String.format("%-20s -> %s%n", p.substring("casp.".length()),
                        g.get(p).isEmpty() ? "(nothing)" : String.join(", ", g.get(p).stream().map(u -> u.substring("casp.".length())).toList()))));
        return sb.append("```\n").toString();
    }

    /** A cycle of the graph as a path that ends where it starts, or empty when there is none. */
    static List<String> cycle(Map<String, Set<String>> g) {
        Map<String, Integer> state = new TreeMap<>(); // 1: on the current path, 2: done
        for (String start : g.keySet()) {
            List<String> path = new ArrayList<>();
            List<String> c = visit(start, g, state, path);
            if (!c.isEmpty()) return c;
        }
        return List.of();
    }

    private static List<String> visit(String p, Map<String, Set<String>> g, Map<String, Integer> state, List<String> path) {
        Integer s = state.get(p);
        if (s != null && s == 2) return List.of();
        if (s != null) {
            List<String> c = new ArrayList<>(path.subList(path.indexOf(p), path.size()));
            c.add(p);
            return c;
        }
        state.put(p, 1);
        path.add(p);
        for (String q : g.getOrDefault(p, Set.of())) {
            List<String> c = visit(q, g, state, path);
            if (!c.isEmpty()) return c;
        }
        path.remove(path.size() - 1);
        state.put(p, 2);
        return List.of();
    }

    @Test
    void theCycleSearchFindsACycleAndTheLayerRuleAnUpwardUse() {
        Map<String, Set<String>> g = new TreeMap<>(Map.of("casp.a", Set.of("casp.b"), "casp.b", Set.of("casp.c"), "casp.c", Set.of("casp.a")));
        assertEquals(List.of("casp.a", "casp.b", "casp.c", "casp.a"), cycle(g));
        assertEquals(List.of(), cycle(new TreeMap<>(Map.of("casp.a", Set.of("casp.b"), "casp.b", Set.of()))));
        assertEquals("x = 1; \n", code("x = 1; // casp.cli.Main\n/* casp.eval.X */\"casp.cli.Y\""));
    }
}
