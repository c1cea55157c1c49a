package casp.io;

/**
 * A user's mistake: a missing or malformed file, an unsupported architecture, a bad flag value.
 * The CLI prints its message (which names the file, tensor or flag) and exits with code 2,
 * never a stack trace.
 */
public class BadInputException extends RuntimeException {
    public BadInputException(String message) {
        super(message);
    }

    public BadInputException(String message, Throwable cause) {
        super(message, cause);
    }
}
