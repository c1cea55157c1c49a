package casp.compress;

import casp.io.BadInputException;
import casp.io.IoMessages;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks made on an output folder before any work: it is neither the input model, nor inside it,
 * nor around it (replacing it would delete the model), and its parent can be written, so that a
 * read-only destination is found in a second, not after hours of compression.
 */
public final class OutputTarget {
    private OutputTarget() {}

    /** out (flag names it in messages) against the input folder (inputFlag names it). */
    public static void check(String flag, Path out, String inputFlag, Path input) {
        Path o = real(out), in = real(input);
        if (o.equals(in))
            throw new BadInputException(flag + " " + out + " is the " + inputFlag + " folder itself; choose another folder");
        if (o.startsWith(in))
            throw new BadInputException(flag + " " + out + " is inside the " + inputFlag + " folder " + input + "; choose a folder outside it");
        if (in.startsWith(o))
            throw new BadInputException(flag + " " + out + " contains the " + inputFlag + " folder " + input
                    + "; replacing it would delete the input");
        checkWritable(flag, out);
    }

    /** Fails unless a file can be created where out will be (its nearest existing ancestor). */
    public static void checkWritable(String flag, Path out) {
        Path dir = out.toAbsolutePath().normalize().getParent();
        while (dir != null && !Files.exists(dir)) dir = dir.getParent();
        if (dir == null) return;
        if (!Files.isDirectory(dir)) throw new BadInputException(flag + " " + out + ": " + dir + " is not a folder");
        try {
            Path probe = Files.createTempFile(dir, "." + out.getFileName() + ".probe-", null);
            Files.delete(probe);
        } catch (IOException e) {
            throw new BadInputException(flag + " " + out + ": cannot write in " + dir + " (" + IoMessages.describe(e) + ")");
        }
    }

    /** The real path of p, or of its nearest existing ancestor with the rest appended (links resolved). */
    static Path real(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        if (existing == null) return abs;
        try {
            return existing.toRealPath().resolve(existing.relativize(abs)).normalize();
        } catch (IOException e) {
            return abs;
        }
    }
}
