package casp.io;

import casp.TestData;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ChatTemplateTest {

    @Test
    void tinyLlavaTemplateRendersParityPrompts() throws Exception {
        Path root = TestData.shared("models/tiny-llava");
        ChatTemplate t = ChatTemplate.load(root.resolve("model"));
        assertFalse(t.isFallback());
        JsonNode samples = new ObjectMapper().readTree(root.resolve("reference/parity_samples.json").toFile()).get("samples");
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        int checked = 0;
        for (JsonNode s : samples) {
            LlavaDataset.Sample d = dev.get(s.get("dev_index").asInt());
            assertEquals(s.get("id").asText(), d.id());
            assertEquals(s.get("prompt_text").asText(), t.render(d.messages(false), true));
            assertEquals(s.get("prompt_text").asText() + " " + s.get("gold_answer").asText() + "</s>",
                    t.render(d.messages(true), false));
            checked++;
        }
        assertEquals(3, checked);
    }

    @Test
    void llavaStoriesTemplateRendersModelTextForAllDevRecords() {
        Path root = TestData.shared("models/llava-stories");
        ChatTemplate t = ChatTemplate.load(root.resolve("model"));
        List<LlavaDataset.Sample> dev = LlavaDataset.load(root.resolve("data/dev/dev.json"), root.resolve("data/dev/images"));
        assertEquals(300, dev.size());
        for (LlavaDataset.Sample d : dev) {
            assertEquals(d.raw().get("model_text").asText(), t.render(d.messages(true), false), d.id());
            assertEquals("<image>\n", t.render(d.messages(false), true), d.id());
        }
    }

    @Test
    void fallbackIsLlava15Format(@TempDir Path tmp) throws Exception {
        ChatTemplate t = ChatTemplate.load(tmp); // no tokenizer_config.json at all
        assertTrue(t.isFallback());
        var msgs = List.of(
                new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text("What is it?"))),
                new ChatTemplate.Message("assistant", List.of(ChatTemplate.Part.text("A cat."))),
                new ChatTemplate.Message("user", List.of(ChatTemplate.Part.text("Color?"))));
        assertEquals("USER: <image>\nWhat is it? ASSISTANT: A cat.</s>USER: Color? ASSISTANT:", t.render(msgs, true));
        assertEquals("USER: <image>\nWhat is it? ASSISTANT:", t.render(msgs.subList(0, 1), true));
        // tokenizer_config.json without a chat_template: fallback with its eos token
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"eos_token\": {\"content\": \"<|end|>\"}}");
        ChatTemplate t2 = ChatTemplate.load(tmp);
        assertTrue(t2.isFallback());
        assertEquals("USER: <image>\nWhat is it? ASSISTANT: A cat.<|end|>", t2.render(msgs.subList(0, 2), false));
    }

    @Test
    void pythonJinjaFeaturesCommonInChatTemplates() {
        // trim_blocks / lstrip_blocks, loop variables, filters, special tokens, raise_exception
        String src = "{{ bos_token }}{% for m in messages %}\n"
                + "    {% if loop.index0 % 2 == 0 and m['role'] != 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}\n"
                + "[{{ m['role'] | upper }}] {{ m['content'][0]['text'] | trim }}{% if not loop.last %}|{% endif %}\n"
                + "{% endfor %}";
        ChatTemplate t = ChatTemplate.of(src, Map.of("bos_token", "<s>"));
        var ok = List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.text("  hi "))),
                new ChatTemplate.Message("assistant", List.of(ChatTemplate.Part.text("yo"))));
        assertEquals("<s>[USER] hi|[ASSISTANT] yo", t.render(ok, false));
        var bad = List.of(new ChatTemplate.Message("assistant", List.of(ChatTemplate.Part.text("x"))));
        BadInputException e = assertThrows(BadInputException.class, () -> t.render(bad, false));
        assertTrue(e.getMessage().contains("roles must alternate"), e.getMessage());
    }

    /**
     * Templates rendered by Python's jinja2 3.1.6 the way transformers does
     * (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), raise_exception global):
     * resources/casp/io/chat_templates_jinja2.json holds the templates and jinja2's output for
     * a user turn [image, " Hi there. "] and an assistant turn "Yes, see.", add_generation_prompt on.
     * They cover llava-hf's LLaVA-1.5 template (.upper(), selectattr), jinja2's lstrip_blocks rule
     * (indented tags, {%+ ... %}), and Python string methods.
     */
    @Test
    void agreesWithPythonJinja2() throws Exception {
        JsonNode root;
        try (var in = getClass().getResourceAsStream("chat_templates_jinja2.json")) {
            root = new ObjectMapper().readTree(in);
        }
        var msgs = List.of(
                new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.text(" Hi there. "))),
                new ChatTemplate.Message("assistant", List.of(ChatTemplate.Part.text("Yes, see."))));
        int n = 0;
        for (var it = root.get("templates").fields(); it.hasNext(); n++) {
            var e = it.next();
            ChatTemplate t = ChatTemplate.of(e.getValue().asText(), Map.of("bos_token", "<s>", "eos_token", "</s>"));
            assertEquals(root.get("expected").get(e.getKey()).asText(), t.render(msgs, true), e.getKey());
        }
        assertEquals(3, n);
        // HF's {% generation %} tag (assistant masks) renders its body.
        String withGen = root.get("templates").get("llava15hf").asText()
                .replace("{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}",
                        "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}");
        assertNotEquals(withGen, root.get("templates").get("llava15hf").asText());
        assertEquals(root.get("expected").get("llava15hf").asText(), ChatTemplate.of(withGen, Map.of()).render(msgs, true));
    }

    @Test
    void brokenTemplateIsBadInputNamingTheFile(@TempDir Path tmp) throws Exception {
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}{{ m['role'] }\"}");
        ChatTemplate t = ChatTemplate.load(tmp);
        BadInputException e = assertThrows(BadInputException.class,
                () -> t.render(List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.text("x")))), false));
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }

    @Test
    void fallbackRendersVideoAfterImages() {
        var turn = List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.image(), ChatTemplate.Part.video(),
                ChatTemplate.Part.text("What happens?"))));
        assertEquals("USER: <image>\n<video>\nWhat happens? ASSISTANT:", ChatTemplate.llavaFallback().render(turn, true));
    }

    /** LLaVA-NeXT-Video's published template format: images, then videos, then text, selected with selectattr. */
    @Test
    void nextVideoTemplateFormat() {
        String t = "{% for message in messages %}{{ message['role'].upper() }}{{ ': '}}"
                + "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
                + "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\\n' }}{% endfor %}"
                + "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
                + "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";
        var turn = List.of(new ChatTemplate.Message("user", List.of(ChatTemplate.Part.text("Why?"), ChatTemplate.Part.video(),
                ChatTemplate.Part.image())));
        assertEquals("USER: <image>\n<video>\nWhy? ASSISTANT:", ChatTemplate.of(t, Map.of()).render(turn, true));
    }
}
