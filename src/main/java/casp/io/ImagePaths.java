package casp.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;

/**
 * Image names from a data file are confined to the images folder: an absolute path, a "../"
 * that climbs out, or a symbolic link that points out of the folder is refused, so a hostile
 * data set cannot make a command read (and feed to the model, or echo in an error) any file the
 * user can read.
 */
public final class ImagePaths {
    private ImagePaths() {}

    /** The image file `name` inside folder; where names the record in messages. */
    public static Path confined(Path folder, String name, String where) {
        return confined(folder, name, "image", false, where);
    }

    /**
     * The file (or, with folderAllowed, folder) `name` inside folder; key is the record's field
     * ("image", "video") and where names the record in messages.
     */
    public static Path confined(Path folder, String name, String key, boolean folderAllowed, String where) {
        Path rel;
        try {
            rel = Path.of(name);
        } catch (InvalidPathException e) {
            throw new BadInputException(where + ": \"" + key + "\" is not a valid file name: " + e.getReason());
        }
        if (name.isEmpty() || rel.isAbsolute() || rel.getRoot() != null)
            throw new BadInputException(where + ": \"" + key + "\" must be a name inside the images folder " + folder + ", got \"" + name + "\"");
        Path base = folder.toAbsolutePath().normalize();
        Path image = base.resolve(rel).normalize();
        if (!image.startsWith(base) || image.equals(base))
            throw new BadInputException(where + ": \"" + key + "\" \"" + name + "\" leaves the images folder " + folder);
        if (!(folderAllowed ? Files.exists(image) : Files.isRegularFile(image)))
            throw new BadInputException(where + ": " + key + " file " + image + " does not exist");
        try {
            // A link inside the folder may still point outside it.
            if (!image.toRealPath().startsWith(base.toRealPath()))
                throw new BadInputException(where + ": \"" + key + "\" \"" + name + "\" is a link that leaves the images folder " + folder);
        } catch (IOException e) {
            throw new BadInputException(where + ": cannot read " + key + " file " + image + ": " + e.getMessage());
        }
        return image;
    }
}
