package casp.io;

import casp.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class LlavaDatasetTest {

    @Test
    void readsTinyLlavaDevSet() {
        Path dev = TestData.shared("models/tiny-llava/data/dev");
        List<LlavaDataset.Sample> s = LlavaDataset.load(dev.resolve("dev.json"), dev.resolve("images"));
        assertEquals(500, s.size());
        LlavaDataset.Sample first = s.get(0);
        assertEquals("dev_000000", first.id());
        assertEquals(dev.resolve("images/img_000000.png"), first.image());
        assertEquals("Where is the red circle?", first.question());
        assertEquals("The red circle is at the bottom left.", first.answer());
        assertEquals("position", first.raw().get("question_type").asText());
        var prompt = first.messages(false);
        assertEquals(1, prompt.size());
        assertEquals("user", prompt.get(0).role());
        assertEquals(List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text("Where is the red circle?")), prompt.get(0).content());
        var full = first.messages(true);
        assertEquals(2, full.size());
        assertEquals(List.of(ChatTemplate.Part.text("The red circle is at the bottom left.")), full.get(1).content());
    }

    private static Path write(Path dir, String json) throws Exception {
        Path f = dir.resolve("data.json");
        Files.writeString(f, json);
        return f;
    }

    @Test
    void malformedRecordsNameFileAndSample(@TempDir Path tmp) throws Exception {
        Path img = tmp.resolve("a.png");
        Files.write(img, new byte[]{1});
        String[][] cases = {
                {"{\"x\": 1}", "expected a JSON list"},
                {"[{\"id\": \"s1\", \"image\": \"a.png\"}]", "id s1"},
                {"[{\"id\": \"s2\", \"image\": \"missing.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nq\"}]}]", "missing.png"},
                {"[{\"id\": \"s3\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"q\"}]}]", "placeholders"},
                {"[{\"id\": \"s4\", \"conversations\": [{\"from\": \"robot\", \"value\": \"q\"}]}]", "robot"},
                {"[{\"id\": \"s5\", \"conversations\": [{\"from\": \"human\", \"value\": 3}]}]", "id s5"},
                {"[{\"id\": \"s6\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image> q\"}]}]", "no \"image\""},
                {"[1, 2", "not valid JSON"},
        };
        for (String[] c : cases) {
            Path f = write(tmp, c[0]);
            BadInputException e = assertThrows(BadInputException.class, () -> LlavaDataset.load(f, tmp), c[0]);
            assertTrue(e.getMessage().contains("data.json"), e.getMessage());
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
        assertThrows(BadInputException.class, () -> LlavaDataset.load(tmp.resolve("nope.json"), tmp));
        Path ok = write(tmp, "[{\"id\": \"s\", \"image\": \"a.png\", \"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nq\"}]}]");
        BadInputException e = assertThrows(BadInputException.class, () -> LlavaDataset.load(ok, tmp.resolve("noimages")));
        assertTrue(e.getMessage().contains("noimages"));
    }

    @Test
    void placeholderAtTheEndAndMultiTurn(@TempDir Path tmp) throws Exception {
        Files.write(tmp.resolve("a.png"), new byte[]{1});
        Path f = write(tmp, "[{\"id\": \"m\", \"image\": \"a.png\", \"conversations\": ["
                + "{\"from\": \"human\", \"value\": \"What is it?\\n<image>\"}, {\"from\": \"gpt\", \"value\": \"A cat.\"},"
                + "{\"from\": \"human\", \"value\": \"Color?\"}, {\"from\": \"gpt\", \"value\": \"Black.\"}]}]");
        LlavaDataset.Sample s = LlavaDataset.load(f, tmp).get(0);
        assertEquals("Black.", s.answer());
        assertEquals("Color?", s.question());
        ChatTemplate t = ChatTemplate.llavaFallback();
        assertEquals("USER: <image>\nWhat is it? ASSISTANT: A cat.</s>USER: Color? ASSISTANT:", t.render(s.messages(false), true));
    }

    @Test
    void videoRecords(@TempDir Path tmp) throws Exception {
        Files.write(tmp.resolve("a.png"), new byte[]{1});
        Files.createDirectories(tmp.resolve("clip"));
        Path f = write(tmp, "[{\"id\": \"v\", \"image\": \"a.png\", \"video\": \"clip\", \"conversations\": ["
                + "{\"from\": \"human\", \"value\": \"<video>\\n<image>\\nSame?\"}, {\"from\": \"gpt\", \"value\": \"Yes.\"}]}]");
        LlavaDataset.Sample s = LlavaDataset.load(f, tmp).get(0);
        assertEquals(tmp.resolve("clip"), s.video());
        assertEquals("Same?", s.question());
        assertEquals("USER: <image>\n<video>\nSame? ASSISTANT:", ChatTemplate.llavaFallback().render(s.messages(false), true));
        for (String[] c : new String[][]{
                {"[{\"video\": \"clip\", \"conversations\": [{\"from\": \"human\", \"value\": \"q\"}]}]", "placeholders"},
                {"[{\"conversations\": [{\"from\": \"human\", \"value\": \"<video> q\"}]}]", "no \"video\""},
                {"[{\"video\": \"gone.mp4\", \"conversations\": [{\"from\": \"human\", \"value\": \"<video> q\"}]}]", "gone.mp4"},
                {"[{\"video\": 3, \"conversations\": [{\"from\": \"human\", \"value\": \"<video> q\"}]}]", "file or folder"}}) {
            Path bad = write(tmp, c[0]);
            BadInputException e = assertThrows(BadInputException.class, () -> LlavaDataset.load(bad, tmp), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
