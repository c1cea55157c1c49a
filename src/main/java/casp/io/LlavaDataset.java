package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Calibration / evaluation data in LLaVA's conversation JSON: a list of
 * {@code {"id", "image", "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", "value": "..."}, ...]}} plus a folder holding the images. A record may instead
 * (or also) have a {@code "video"} (a video file or a folder of frames, resolved like images)
 * mentioned once as {@code <video>} in its conversation. Extra keys are kept in
 * {@link Sample#raw()}. Every malformed record is a {@link BadInputException} naming the file and
 * the sample.
 */
public final class LlavaDataset {
    private LlavaDataset() {}

    /** The image placeholder in LLaVA conversation text. */
    public static final String IMAGE_PLACEHOLDER = "<image>";

    /** The video placeholder in LLaVA-NeXT-Video conversation text. */
    public static final String VIDEO_PLACEHOLDER = "<video>";

    /** One conversation turn: from "human", "gpt" or "system". */
    public record Turn(String from, String value) {}

    /** One record; image and video are null when the record has none. */
    public record Sample(String id, Path image, List<Turn> turns, JsonNode raw, Path video) {
        public Sample {
            turns = List.copyOf(turns);
        }

        /** A record without video. */
        public Sample(String id, Path image, List<Turn> turns, JsonNode raw) {
            this(id, image, turns, raw, null);
        }

        /** The last turn's text when it is the model's ("gpt") answer, else null. */
        public String answer() {
            Turn last = turns.get(turns.size() - 1);
            return last.from().equals("gpt") ? last.value() : null;
        }

        /** The last human question without the image placeholder. */
        public String question() {
            for (int i = turns.size() - 1; i >= 0; i--)
                if (turns.get(i).from().equals("human")) return stripPlaceholder(turns.get(i).value());
            return null;
        }

        /**
         * The chat messages of the conversation: with includeAnswer false, the final "gpt" turn is
         * left out (the prompt to answer); true gives the whole conversation (teacher forcing). A
         * human turn containing {@code <image>} becomes [image, text] (image first, as LLaVA's
         * processors put it).
         */
        public List<ChatTemplate.Message> messages(boolean includeAnswer) {
            int end = turns.size();
            if (!includeAnswer && answer() != null) end--;
            List<ChatTemplate.Message> out = new ArrayList<>();
            for (int i = 0; i < end; i++) {
                Turn t = turns.get(i);
                String role = switch (t.from()) {
                    case "human" -> "user";
                    case "gpt" -> "assistant";
                    default -> "system";
                };
                List<ChatTemplate.Part> parts = new ArrayList<>();
                if (t.value().contains(IMAGE_PLACEHOLDER)) parts.add(ChatTemplate.Part.image());
                if (t.value().contains(VIDEO_PLACEHOLDER)) parts.add(ChatTemplate.Part.video());
                parts.add(ChatTemplate.Part.text(stripPlaceholder(t.value())));
                out.add(new ChatTemplate.Message(role, parts));
            }
            return out;
        }
    }

    /** The text with {@code <image>} / {@code <video>} and the newline that separates each from the text removed. */
    public static String stripPlaceholder(String value) {
        String s = value;
        for (String p : new String[]{IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER})
            s = s.replace(p + "\n", "").replace("\n" + p, "").replace(p, "");
        return s.strip();
    }

    /**
     * Reads a LLaVA conversation file; images are resolved inside imagesDir (the JSON's folder when
     * null) and may not leave it ({@link ImagePaths}). The image files are checked to exist, not decoded.
     */
    public static List<Sample> load(Path json, Path imagesDir) {
        if (!Files.isRegularFile(json)) throw new BadInputException(json + ": no such data file");
        if (imagesDir != null && !Files.isDirectory(imagesDir)) throw new BadInputException(imagesDir + ": no such images folder");
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json.toFile());
        } catch (IOException e) {
            throw new BadInputException(json + ": not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isArray())
            throw new BadInputException(json + ": expected a JSON list of {\"id\", \"image\", \"conversations\"} records");
        List<Sample> out = new ArrayList<>(root.size());
        for (int i = 0; i < root.size(); i++) {
            JsonNode r = root.get(i);
            String where = json + ": record " + i;
            if (!r.isObject()) throw new BadInputException(where + " is not an object");
            String id = r.hasNonNull("id") ? r.get("id").asText() : String.valueOf(i);
            where = json + ": record " + i + " (id " + id + ")";
            JsonNode conv = r.get("conversations");
            if (conv == null || !conv.isArray() || conv.isEmpty())
                throw new BadInputException(where + ": missing or empty \"conversations\" list");
            List<Turn> turns = new ArrayList<>();
            int placeholders = 0, videoPlaceholders = 0;
            for (int k = 0; k < conv.size(); k++) {
                JsonNode t = conv.get(k);
                if (!t.isObject() || !t.path("from").isTextual() || !t.path("value").isTextual())
                    throw new BadInputException(where + ": conversation turn " + k + " needs string \"from\" and \"value\"");
                String from = t.get("from").asText();
                if (!from.equals("human") && !from.equals("gpt") && !from.equals("system"))
                    throw new BadInputException(where + ": conversation turn " + k + " has \"from\": \"" + from
                            + "\" (expected human, gpt or system)");
                String value = t.get("value").asText();
                placeholders += count(value, IMAGE_PLACEHOLDER);
                videoPlaceholders += count(value, VIDEO_PLACEHOLDER);
                turns.add(new Turn(from, value));
            }
            Path image = media(r, "image", "a file name", placeholders, json, imagesDir, where);
            Path video = media(r, "video", "a file or folder name", videoPlaceholders, json, imagesDir, where);
            out.add(new Sample(id, image, turns, r, video));
        }
        return out;
    }

    /**
     * The record's media file for key ("image" or "video"), resolved against imagesDir, checked to
     * exist and to be mentioned exactly once as {@code <key>} in the conversation; null when the
     * record has none (and the conversation must not mention it).
     */
    private static Path media(JsonNode r, String key, String what, int placeholders, Path json, Path imagesDir, String where) {
        if (!r.hasNonNull(key)) {
            if (placeholders != 0)
                throw new BadInputException(where + ": conversation mentions <" + key + "> but the record has no \"" + key + "\"");
            return null;
        }
        if (!r.get(key).isTextual()) throw new BadInputException(where + ": \"" + key + "\" must be " + what);
        Path file = ImagePaths.confined(imagesDir != null ? imagesDir : json.toAbsolutePath().getParent(), r.get(key).asText(),
                key, !key.equals("image"), where);
        if (placeholders != 1)
            throw new BadInputException(where + ": has " + (key.equals("image") ? "an " : "a ") + key + " but " + placeholders + " \"<" + key
                    + ">\" placeholders in its conversation (expected exactly one)");
        return file;
    }

    private static int count(String s, String placeholder) {
        int n = 0;
        for (int i = s.indexOf(placeholder); i >= 0; i = s.indexOf(placeholder, i + 1)) n++;
        return n;
    }
}
