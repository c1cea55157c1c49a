package casp.cli;

import casp.io.IoMessages;

import java.io.IOException;
import java.io.UncheckedIOException;

/** The one-line message of a failure caused by the machine rather than by a bug: I/O errors and an exhausted heap. */
final class FailureMessages {
    private FailureMessages() {}

    /** The message, or null when the failure is not an I/O error or out of memory. */
    static String environment(Throwable ex) {
        String context = null;
        for (Throwable t = ex; t != null; t = t.getCause()) {
            if (t instanceof UncheckedIOException u && context == null) context = u.getMessage();
            if (t instanceof IOException io) {
                String what = IoMessages.describe(io);
                return context != null && !context.equals(io.toString()) ? context + ": " + what : what;
            }
            if (t instanceof OutOfMemoryError) {
                return "out of memory (Java heap of " + Runtime.getRuntime().maxMemory() / (1 << 20)
                        + " MiB): lower the sizes asked for, run with --weights map where the command has it, or give Java more memory (CASP_JAVA_OPTS=-Xmx...)";
            }
        }
        return null;
    }
}
