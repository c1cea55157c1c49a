package casp.compress;

import casp.io.BadInputException;
import casp.io.IoMessages;
import casp.io.Sha256;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The SHA-256 of each file of a {@link Checkpoint} (state.json's "sha256": file name -> digest)
 * and of state.json itself ("state_sha256", over its other fields as they read back), checked
 * before a resumed run uses any of them.
 */
final class CheckpointDigests {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String FILES = "sha256", STATE = "state_sha256";

    private final Map<String, String> byFile = new LinkedHashMap<>();

    void record(Path file) throws IOException {
        byFile.put(file.getFileName().toString(), Sha256.of(file));
    }

    void forget(String fileName) {
        byFile.remove(fileName);
    }

    /** Adds the file digests, then the digest of everything else in root. */
    void write(ObjectNode root) throws IOException {
        ObjectNode files = root.putObject(FILES);
        byFile.forEach(files::put);
        root.remove(STATE);
        root.put(STATE, stateDigest(root));
    }

    void read(JsonNode root) {
        byFile.clear();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.path(FILES).fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            byFile.put(e.getKey(), e.getValue().asText());
        }
    }

    /** file, after checking it against its recorded digest. */
    Path verify(Path file) {
        String expected = byFile.get(file.getFileName().toString());
        if (expected == null)
            throw new BadInputException(file + ": the checkpoint's state.json records no checksum for it; the checkpoint is "
                    + "damaged or was made by an older casp: start over with --force");
        String actual;
        try {
            actual = Sha256.of(file);
        } catch (IOException e) {
            throw new BadInputException(file + ": cannot read the checkpoint file: " + IoMessages.describe(e));
        }
        if (!expected.equals(actual))
            throw new BadInputException(file + ": does not match the checksum recorded in state.json (the checkpoint is "
                    + "damaged or was changed); start over with --force");
        return file;
    }

    /** Refuses a state.json whose content no longer matches its own digest. */
    static void verifyState(Path state, JsonNode root) {
        if (root == null || !root.isObject() || !root.path(STATE).isTextual())
            throw new BadInputException(state + ": not a checkpoint state (no " + STATE + "); start over with --force");
        ObjectNode copy = ((ObjectNode) root).deepCopy();
        String recorded = copy.remove(STATE).asText();
        if (!recorded.equals(stateDigest(copy)))
            throw new BadInputException(state + ": does not match its own checksum (the checkpoint is damaged or was edited); "
                    + "start over with --force");
    }

    /** The digest of the JSON as it reads back from a file (so writing and re-reading give the same bytes). */
    private static String stateDigest(JsonNode root) {
        try {
            JsonNode asRead = JSON.readTree(JSON.writeValueAsString(root));
            return Sha256.of(JSON.writeValueAsString(asRead).getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
