package casp.cli;

import casp.compress.FolderChecksums;
import casp.io.BadInputException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** `casp verify DIR`: checks a compressed folder's tensors and files against the SHA-256 list in its casp-report.json. */
@Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Check a compressed model folder against the SHA-256 of every tensor and file that casp compress "
                + "recorded in its casp-report.json. Exit 0 when all match; exit 2 naming the first tensor or file that differs.")
public final class VerifyCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "DIR", description = "folder written by casp compress")
    Path dir;

    @Option(names = "--json", description = "print one JSON object: ok, tensors, files, problems")
    boolean json;

    @Override
    public Integer call() throws Exception {
        FolderChecksums.Result r = FolderChecksums.verify(dir);
        if (json) {
            ObjectNode j = new ObjectMapper().createObjectNode();
            j.put("ok", r.ok());
            j.put("tensors", r.tensors());
            j.put("files", r.files());
            ArrayNode p = j.putArray("problems");
            r.problems().forEach(p::add);
            System.out.println(j);
            return r.ok() ? 0 : Main.EXIT_BAD_INPUT;
        }
        if (!r.ok()) {
            int more = r.problems().size() - 1;
            throw new BadInputException(r.problems().get(0) + (more > 0 ? " (and " + more + " more)" : ""));
        }
        System.out.println(dir + ": " + r.tensors() + " tensors and " + r.files() + " files match casp-report.json");
        return 0;
    }
}
