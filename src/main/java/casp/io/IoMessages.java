package casp.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;

/** One readable line for an I/O failure (permission, missing file, full disk), naming the file when Java knows it. */
public final class IoMessages {
    private IoMessages() {}

    public static String describe(IOException e) {
        if (e instanceof AccessDeniedException a) return a.getFile() + ": permission denied (read-only?)";
        if (e instanceof NoSuchFileException n) return n.getFile() + ": no such file or folder";
        if (e instanceof FileSystemException f && f.getFile() != null)
            return f.getFile() + (f.getOtherFile() != null ? " -> " + f.getOtherFile() : "") + ": "
                    + (f.getReason() != null ? f.getReason() : f.getClass().getSimpleName());
        String m = e.getMessage();
        return m != null && !m.isBlank() ? m : e.getClass().getSimpleName();
    }
}
