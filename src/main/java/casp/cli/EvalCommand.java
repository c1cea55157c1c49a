package casp.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** `casp eval SUBCOMMAND`: evaluations of a model. Add a subcommand class to the list below. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Evaluate a model (see the subcommands).",
        subcommands = {
                EvalPplCommand.class,
                EvalVqaCommand.class,
        })
public final class EvalCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
