package casp.cli;

import casp.io.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point: `casp <command> ...`. Each subcommand lives in its own class in this package. */
@Command(name = "casp", mixinStandardHelpOptions = true, version = "casp 0.1.0",
        description = "Compress Large Multimodal Models to ~2 bits with CASP, evaluate and run them on CPUs.",
        subcommands = {
                InspectCommand.class,
                GenerateCommand.class,
                EvalCommand.class,
                BenchCommand.class,
                CompressCommand.class,
                SparsityCommand.class,
                DemoCommand.class,
                SynthCommand.class,
                VerifyCommand.class,
                ExportCommand.class,
        })
public final class Main implements Runnable {

    /** Exit code for user errors (bad file, bad flag, unsupported model). */
    public static final int EXIT_BAD_INPUT = 2;

    @Override
    public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** A message on one line: parsers' messages (Jackson's "at [Source: ...]") may span several. */
    static String oneLine(String message) {
        return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
    }

    /** Runs the command line and returns the exit code; used by tests. */
    public static int execute(String... args) {
        CommandLine cmd = new CommandLine(new Main());
        cmd.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            Throwable t = ex;
            while (t != null && !(t instanceof BadInputException)) t = t.getCause();
            if (t != null) {
                commandLine.getErr().println("casp: error: " + oneLine(t.getMessage()));
                return EXIT_BAD_INPUT;
            }
            String environment = FailureMessages.environment(ex);
            if (environment != null) { // a full disk, a read-only folder, too small a heap: one line, not a stack trace
                commandLine.getErr().println("casp: error: " + oneLine(environment));
                return EXIT_BAD_INPUT;
            }
            throw ex;
        });
        cmd.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("casp: error: " + ex.getMessage());
            ex.getCommandLine().getErr().println("(see --help)");
            return EXIT_BAD_INPUT;
        });
        return cmd.execute(args);
    }
}
