package casp.compress;

import casp.io.BadInputException;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An exclusive lock on an output folder, held for a whole run, so that two runs writing the same
 * --out (or its checkpoint) refuse each other instead of interleaving their files. The lock is an
 * OS file lock on {@code .NAME.lock} beside the folder: it vanishes with the process, so a run
 * killed with kill -9 never leaves a stale lock behind (only the empty file, which the next run
 * reuses; a normal end or Ctrl-C removes it).
 */
public final class OutputLock implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;
    private final Thread removeOnExit;

    private OutputLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
        this.removeOnExit = new Thread(() -> {
            try {
                Files.deleteIfExists(file);
            } catch (IOException ignored) {
                // best effort while the JVM stops
            }
        }, "casp-remove-output-lock");
        Runtime.getRuntime().addShutdownHook(removeOnExit);
    }

    /** The lock file of an output folder. */
    static Path fileFor(Path out) {
        Path o = out.toAbsolutePath().normalize();
        return o.resolveSibling("." + o.getFileName() + ".lock");
    }

    /** Locks out, or fails with a {@link BadInputException} when another run holds it. */
    public static OutputLock acquire(Path out) throws IOException {
        Path file = fileFor(out);
        Files.createDirectories(file.getParent());
        for (int attempt = 0; ; attempt++) {
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException sameProcess) {
                l = null;
            }
            if (l == null) {
                ch.close();
                throw new BadInputException("--out " + out + " is being written by another casp run right now (it holds "
                        + file + "); wait for it to finish or choose another --out");
            }
            // The holder before us deletes the file when done; if it did so after we opened it, our lock
            // guards a file nobody else sees. A token written through the lock and read back by name tells.
            String token = ProcessHandle.current().pid() + " " + System.nanoTime() + "\n";
            ch.truncate(0);
            ch.write(java.nio.ByteBuffer.wrap(token.getBytes(java.nio.charset.StandardCharsets.UTF_8)), 0);
            ch.force(false);
            if (token.equals(readQuietly(file)) || attempt == 10) return new OutputLock(file, ch, l);
            l.release();
            ch.close();
        }
    }

    private static String readQuietly(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public void close() throws IOException {
        try {
            Runtime.getRuntime().removeShutdownHook(removeOnExit);
        } catch (IllegalStateException shuttingDown) {
            // the hook removes the file
        }
        try {
            Files.deleteIfExists(file);
        } finally {
            lock.release();
            channel.close();
        }
    }
}
