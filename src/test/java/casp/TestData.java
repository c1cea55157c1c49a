package casp;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates ../shared (models and reference outputs) for tests. In CI (env CI set) a missing
 * folder fails the test; on a fresh clone elsewhere the test is skipped with a clear message.
 */
public final class TestData {
    private TestData() {}

    /** The shared folder: -Dcasp.shared, else the first ancestor of user.dir with a sibling shared/models. */
    public static Path sharedDir() {
        String prop = System.getProperty("casp.shared");
        if (prop != null) return Path.of(prop);
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            Path candidate = p.resolveSibling("shared");
            if (Files.isDirectory(candidate.resolve("models"))) return candidate;
        }
        return Path.of(System.getProperty("user.dir")).resolveSibling("shared");
    }

    /** A path under shared/, skipping (or failing in CI) when it does not exist. */
    public static Path shared(String relative) {
        Path p = sharedDir().resolve(relative);
        if (!Files.exists(p)) {
            String msg = "shared test data not found: " + p + " (expected ../shared beside the repository)";
            if (System.getenv("CI") != null) throw new AssertionError(msg);
            Assumptions.abort(msg);
        }
        return p;
    }

    /** A model folder under shared/models/NAME/model. */
    public static Path model(String name) {
        return shared("models/" + name + "/model");
    }
}
