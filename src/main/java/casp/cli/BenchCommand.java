package casp.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** `casp bench SUBCOMMAND`: throughput measurements. Add a subcommand class to the list below. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure throughput (see the subcommands).",
        subcommands = {
                BenchDecodeCommand.class,
        })
public final class BenchCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
