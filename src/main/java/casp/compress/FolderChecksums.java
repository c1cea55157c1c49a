package casp.compress;

import casp.io.BadInputException;
import casp.io.IoMessages;
import casp.io.SafeTensorsFile;
import casp.io.Sha256;
import casp.io.TensorInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The SHA-256 list of a compressed folder, kept in casp-report.json under "sha256": each
 * safetensors tensor's dtype, shape and data bytes by file and tensor name, and every other file written before
 * the report (config.json, tokenizer files). safetensors has no checksum of its own; `casp verify`
 * recomputes this list and names the first tensor or file that differs.
 */
public final class FolderChecksums {
    private FolderChecksums() {}

    public static final String REPORT = "casp-report.json";
    static final String KEY = "sha256";

    /** What a verification found. */
    public record Result(int tensors, int files, List<String> problems) {
        public boolean ok() { return problems.isEmpty(); }
    }

    /** The list for the folder's current content (casp-report.json itself excluded). */
    static ObjectNode compute(Path dir) throws IOException {
        ObjectNode root = new ObjectMapper().createObjectNode();
        root.put("algorithm", "sha256");
        ObjectNode files = root.putObject("files"), tensors = root.putObject("tensors");
        for (Path f : listFiles(dir)) {
            String name = f.getFileName().toString();
            if (name.equals(REPORT)) continue;
            if (name.endsWith(".safetensors")) {
                ObjectNode t = tensors.putObject(name);
                tensorDigests(f).forEach(t::put);
            } else {
                files.put(name, Sha256.of(f));
            }
        }
        return root;
    }

    /** Adds the list of dir's files to report (an object) before it is written into dir. */
    static void addTo(JsonNode report, Path dir) throws IOException {
        if (report instanceof ObjectNode o) o.set(KEY, compute(dir));
    }

    /** Checks dir against the list in its casp-report.json; a folder without one is a {@link BadInputException}. */
    public static Result verify(Path dir) {
        if (!Files.isDirectory(dir)) throw new BadInputException(dir + ": no such folder");
        Path reportFile = dir.resolve(REPORT);
        if (!Files.isRegularFile(reportFile))
            throw new BadInputException(dir + ": no " + REPORT + " (not a folder written by casp compress)");
        JsonNode recorded;
        try {
            recorded = new ObjectMapper().readTree(reportFile.toFile()).get(KEY);
        } catch (IOException e) {
            throw new BadInputException(reportFile + ": not valid JSON: " + e.getMessage());
        }
        if (recorded == null || !recorded.path("tensors").isObject() || !recorded.path("files").isObject())
            throw new BadInputException(reportFile + ": no \"" + KEY + "\" list of tensors (written by an older casp?)");
        ObjectNode now;
        try {
            now = compute(dir);
        } catch (IOException e) {
            throw new BadInputException(dir + ": cannot read: " + IoMessages.describe(e));
        }
        List<String> problems = new ArrayList<>();
        int tensors = 0;
        JsonNode recT = recorded.get("tensors"), nowT = now.get("tensors");
        for (String file : union(recT, nowT)) {
            JsonNode a = recT.get(file), b = nowT.get(file);
            if (a == null) { problems.add(dir.resolve(file) + ": not in the report's list"); continue; }
            if (b == null) { problems.add(dir.resolve(file) + ": missing"); continue; }
            for (String t : union(a, b)) {
                tensors++;
                JsonNode x = a.get(t), y = b.get(t);
                if (x == null) problems.add(dir.resolve(file) + ": tensor '" + t + "' is not in the report's list");
                else if (y == null) problems.add(dir.resolve(file) + ": tensor '" + t + "' is missing");
                else if (!x.asText().equals(y.asText())) problems.add(dir.resolve(file) + ": tensor '" + t + "' does not match its sha256");
            }
        }
        JsonNode recF = recorded.get("files"), nowF = now.get("files");
        for (String file : union(recF, nowF)) {
            JsonNode x = recF.get(file), y = nowF.get(file);
            if (x == null) continue; // a file added later (a chart, notes) is not part of the model
            if (y == null) problems.add(dir.resolve(file) + ": missing");
            else if (!x.asText().equals(y.asText())) problems.add(dir.resolve(file) + ": does not match its sha256");
        }
        return new Result(tensors, recF.size(), problems);
    }

    private static List<String> union(JsonNode a, JsonNode b) {
        TreeMap<String, Boolean> names = new TreeMap<>();
        for (JsonNode n : new JsonNode[]{a, b}) for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) names.put(it.next(), true);
        return new ArrayList<>(names.keySet());
    }

    private static List<Path> listFiles(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path f : ds) if (Files.isRegularFile(f)) out.add(f);
        }
        out.sort(null);
        return out;
    }

    private static Map<String, String> tensorDigests(Path file) throws IOException {
        SafeTensorsFile st = SafeTensorsFile.open(file);
        Map<String, String> out = new TreeMap<>();
        for (TensorInfo t : st.tensors().values()) {
            MessageDigest md = Sha256.digest();
            // dtype and shape first: a header that reinterprets unchanged bytes is a change too
            md.update((t.dtype() + " " + java.util.Arrays.toString(t.shape()) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
            st.copyTo(t, new WritableByteChannel() {
                @Override public int write(ByteBuffer src) {
                    int n = src.remaining();
                    md.update(src);
                    return n;
                }

                @Override public boolean isOpen() { return true; }

                @Override public void close() {}
            });
            out.put(t.name(), Sha256.hex(md));
        }
        return out;
    }
}
