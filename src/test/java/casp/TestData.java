package casp;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds the shared test assets (../shared/models/... next to the repository clone).
 *
 * <p>Lookup order: system property {@code casp.shared}, environment variable {@code CASP_SHARED},
 * then each directory from {@code user.dir} upwards, looking for a child {@code shared} that holds
 * a {@code models} folder (so /work/main/../shared and /work/wt-x/../shared both work).
 *
 * <p>When the folder is missing a test is skipped (JUnit abort) with a message saying what was
 * looked for, except when the environment variable {@code CI} is set: there the assets must be
 * present, so the test fails instead.
 */
public final class TestData {
    private TestData() {
    }

    /** The shared folder, if it can be found; no side effects. */
    public static Optional<Path> findSharedDir() {
        String prop = System.getProperty("casp.shared");
        if (prop != null && !prop.isBlank()) return existing(Path.of(prop));
        String env = System.getenv("CASP_SHARED");
        if (env != null && !env.isBlank()) return existing(Path.of(env));
        for (Path dir = Path.of(System.getProperty("user.dir")).toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("shared");
            if (Files.isDirectory(candidate.resolve("models"))) return Optional.of(candidate.normalize());
        }
        return Optional.empty();
    }

    private static Optional<Path> existing(Path p) {
        return Files.isDirectory(p.resolve("models")) ? Optional.of(p.toAbsolutePath().normalize()) : Optional.empty();
    }

    /** The shared folder; skips the calling test if it is absent (fails when CI is set). */
    public static Path sharedDir() {
        Optional<Path> dir = findSharedDir();
        if (dir.isEmpty()) {
            missing("the shared test assets (a folder 'shared/models' above " + System.getProperty("user.dir")
                    + ", or -Dcasp.shared=DIR / CASP_SHARED=DIR)");
        }
        return dir.get();
    }

    /** shared/models/NAME, e.g. modelDir("stories260K"); skips (or fails on CI) if absent. */
    public static Path modelDir(String name) {
        Path dir = sharedDir().resolve("models").resolve(name);
        if (!Files.isDirectory(dir)) missing("the shared model folder " + dir);
        return dir;
    }

    /** A file under shared/, e.g. file("models/stories260K/reference/eval.txt"); skips (or fails on CI) if absent. */
    public static Path file(String relative) {
        Path f = sharedDir().resolve(relative);
        if (!Files.exists(f)) missing("the shared test file " + f);
        return f;
    }

    /** The Hugging Face folder of a shared model: shared/models/NAME/model. */
    public static Path model(String name) {
        return file("models/" + name + "/model");
    }

    /** Same as {@link #file}: a path under shared/ (kept for the tests written against that name). */
    public static Path shared(String relative) {
        return file(relative);
    }

    private static void missing(String what) {
        String ci = System.getenv("CI");
        if (ci != null && !ci.isBlank()) fail("CI is set but " + what + " is missing");
        Assumptions.abort("skipped: " + what + " not found");
    }
}
