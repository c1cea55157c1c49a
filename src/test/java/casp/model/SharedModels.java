package casp.model;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds ../shared/models (the reference models beside the clone): -Dcasp.shared=DIR, else the
 * first "shared/models" found walking up from the working directory.
 */
public final class SharedModels {
    private SharedModels() {}

    public static Path root() {
        String prop = System.getProperty("casp.shared");
        if (prop != null) return Path.of(prop).resolve("models");
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            Path c = p.resolve("shared").resolve("models");
            if (Files.isDirectory(c)) return c;
        }
        throw new IllegalStateException("cannot find shared/models above " + Path.of("").toAbsolutePath()
                + " (set -Dcasp.shared=DIR)");
    }

    /** ../shared/models/stories260K. */
    public static Path stories() {
        return root().resolve("stories260K");
    }
}
