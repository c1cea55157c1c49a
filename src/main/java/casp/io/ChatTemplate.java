package casp.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A model's chat template: the Jinja {@code chat_template} of tokenizer_config.json (or
 * chat_template.jinja / chat_template.json beside it), rendered with Jinjava the way Hugging Face's
 * {@code apply_chat_template} renders it with Python's jinja2: trim_blocks and lstrip_blocks on;
 * the special tokens, {@code raise_exception} and the {@code {% generation %}} tag in scope; the
 * Python string methods templates use ({@code .upper()}, {@code .startswith(x)}, ...) work on
 * strings. Without a template, LLaVA-1.5's format is used:
 * {@code USER: <image>\n{question} ASSISTANT: {answer}</s>}.
 *
 * <p>Where Jinjava differs from jinja2 we adapt: its lstrip_blocks also strips spaces before a
 * tag in the middle of a line, so we apply jinja2's rule (spaces and tabs between a line start
 * and a block or comment tag) to the source ourselves and leave Jinjava's option off.
 *
 * <p>The template only makes the text; the tokenizer adds {@code <s>} (as HF's processor does).
 */
public final class ChatTemplate {
    /** One part of a message: an image or video placeholder or a piece of text. */
    public record Part(String type, String text) {
        public static Part image() { return new Part("image", null); }
        public static Part video() { return new Part("video", null); }
        public static Part text(String text) { return new Part("text", text); }
    }

    /** A chat message: role "user", "assistant" or "system" and its parts. */
    public record Message(String role, List<Part> content) {
        public Message {
            content = List.copyOf(content);
        }
    }

    /**
     * LLaVA-1.5's conversation format, used when the model ships no template; a video part
     * (LLaVA-NeXT-Video) renders as {@code <video>\n} after the images, as that model's template does.
     */
    public static final String LLAVA_15_TEMPLATE =
            "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
                    + "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
                    + "{% for c in message['content'] %}{% if c['type'] == 'video' %}<video>\n{% endif %}{% endfor %}"
                    + "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
                    + "{% elif message['role'] == 'assistant' %}ASSISTANT: "
                    + "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
                    + "{{ eos_token }}{% else %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }} "
                    + "{% endif %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}";

    private static final ObjectMapper JSON = new ObjectMapper();

    static {
        // Jinjava logs through SLF4J; without a provider SLF4J would print a warning on every CLI run.
        if (System.getProperty("slf4j.internal.verbosity") == null) System.setProperty("slf4j.internal.verbosity", "ERROR");
    }

    private final String source;
    private final String template;
    private final boolean fallback;
    private final Map<String, Object> specialTokens;
    private final Jinjava jinjava;

    private final String prepared;

    private ChatTemplate(String source, String template, boolean fallback, Map<String, Object> specialTokens) {
        this.source = source;
        this.template = template;
        this.prepared = prepare(template);
        this.fallback = fallback;
        this.specialTokens = specialTokens;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(false) // done by lstripBlocks(): Jinjava's version strips mid-line too
                .withLegacyOverrides(LegacyOverrides.ALL) // Python-Jinja semantics where Jinjava kept old behaviour
                .withMaxOutputSize(64L << 20)
                .withElResolver(RESOLVER)
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerTag(new GenerationTag());
    }

    private static final Pattern LSTRIP = Pattern.compile("(^|\\n)[ \\t]+(?=\\{[%#](?!\\+))");

    /** Marks the end of the source, so that Jinjava cannot drop a trailing newline of the output. */
    private static final String END = "\u0001END\u0001";

    /**
     * The source as Jinjava should see it to render like jinja2: lstrip_blocks applied (spaces and
     * tabs between a line start and a block/comment tag dropped, except before {%+), then the
     * '+' markers removed (Jinjava does not know them), one trailing newline removed
     * (keep_trailing_newline=False), and the end marker appended.
     */
    static String prepare(String t) {
        String s = LSTRIP.matcher(t).replaceAll("$1").replace("{%+", "{%").replace("{#+", "{#");
        if (s.endsWith("\n")) s = s.substring(0, s.length() - 1);
        return s + END;
    }

    /** HF's {% generation %}...{% endgeneration %} marks assistant text for masks; it renders its body. */
    public static final class GenerationTag implements Tag {
        @Override
        public String getName() { return "generation"; }

        @Override
        public String getEndTagName() { return "endgeneration"; }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder sb = new StringBuilder();
            for (Node child : tagNode.getChildren()) sb.append(child.render(interpreter).getValue());
            return sb.toString();
        }
    }

    private static final ELResolver RESOLVER = new CompositeELResolver() {
        {
            add(new PythonStringMethods());
            add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        }
    };

    /** Python str methods that chat templates call on strings but java.lang.String lacks or spells differently. */
    static final class PythonStringMethods extends ELResolver {
        @Override
        public Object invoke(ELContext ctx, Object base, Object method, Class<?>[] types, Object[] params) {
            if (!(base instanceof String s) || method == null) return null;
            Object[] p = params == null ? new Object[0] : params;
            Object r = call(s, method.toString(), p);
            if (r != NONE) ctx.setPropertyResolved(true);
            return r == NONE ? null : r;
        }

        private static final Object NONE = new Object();

        private static Object call(String s, String m, Object[] p) {
            String a0 = p.length > 0 && p[0] != null ? p[0].toString() : null;
            switch (m) {
                case "upper": return p.length == 0 ? s.toUpperCase(java.util.Locale.ROOT) : NONE;
                case "lower": return p.length == 0 ? s.toLowerCase(java.util.Locale.ROOT) : NONE;
                case "strip": return a0 == null ? s.strip() : rstrip(lstrip(s, a0), a0);
                case "lstrip": return a0 == null ? s.stripLeading() : lstrip(s, a0);
                case "rstrip": return a0 == null ? s.stripTrailing() : rstrip(s, a0);
                case "startswith": return p.length == 1 ? s.startsWith(a0) : NONE;
                case "endswith": return p.length == 1 ? s.endsWith(a0) : NONE;
                case "title": return p.length == 0 ? title(s) : NONE;
                case "capitalize":
                    return p.length == 0 ? (s.isEmpty() ? s : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT)
                            + s.substring(1).toLowerCase(java.util.Locale.ROOT)) : NONE;
                case "replace": return p.length == 2 ? s.replace(a0, String.valueOf(p[1])) : NONE;
                case "split":
                    if (p.length == 0 || a0 == null) return List.of(s.strip().isEmpty() ? new String[0] : s.strip().split("\\s+"));
                    return p.length == 1 ? List.of(s.split(Pattern.quote(a0), -1)) : NONE;
                default: return NONE;
            }
        }

        private static String lstrip(String s, String chars) {
            int i = 0;
            while (i < s.length() && chars.indexOf(s.charAt(i)) >= 0) i++;
            return s.substring(i);
        }

        private static String rstrip(String s, String chars) {
            int i = s.length();
            while (i > 0 && chars.indexOf(s.charAt(i - 1)) >= 0) i--;
            return s.substring(0, i);
        }

        private static String title(String s) {
            StringBuilder b = new StringBuilder(s.length());
            boolean prevCased = false;
            for (char c : s.toCharArray()) {
                b.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
                prevCased = Character.isLetter(c);
            }
            return b.toString();
        }

        @Override public Class<?> getCommonPropertyType(ELContext c, Object b) { return null; }
        @Override public java.util.Iterator<java.beans.FeatureDescriptor> getFeatureDescriptors(ELContext c, Object b) { return null; }
        @Override public Class<?> getType(ELContext c, Object b, Object p) { return null; }
        @Override public Object getValue(ELContext c, Object b, Object p) { return null; }
        @Override public boolean isReadOnly(ELContext c, Object b, Object p) { return true; }
        @Override public void setValue(ELContext c, Object b, Object p, Object v) {}
    }

    /** Called by templates as raise_exception('message'). */
    public static String raiseException(String message) {
        throw new TemplateException(message);
    }

    private static final class TemplateException extends RuntimeException {
        TemplateException(String message) {
            super(message);
        }
    }

    /** A template from its Jinja source; specialTokens are the variables bos_token, eos_token, ... */
    public static ChatTemplate of(String template, Map<String, ?> specialTokens) {
        return new ChatTemplate("(template)", template, false, new LinkedHashMap<>(specialTokens));
    }

    /** LLaVA-1.5's format with eos_token "</s>". */
    public static ChatTemplate llavaFallback() {
        return new ChatTemplate("(built-in LLaVA-1.5 format)", LLAVA_15_TEMPLATE, true,
                new LinkedHashMap<>(Map.of("bos_token", "<s>", "eos_token", "</s>")));
    }

    /**
     * The template of a model folder: chat_template.jinja, else chat_template.json's
     * "chat_template", else tokenizer_config.json's "chat_template"; LLaVA-1.5's format when none
     * exists. Special-token strings of tokenizer_config.json become template variables.
     */
    public static ChatTemplate load(Path modelDir) {
        Path tc = modelDir.resolve("tokenizer_config.json");
        Map<String, Object> specials = new LinkedHashMap<>();
        specials.put("bos_token", "<s>");
        specials.put("eos_token", "</s>");
        String template = null;
        String source = null;
        if (Files.isRegularFile(tc)) {
            JsonNode root = readJson(tc);
            for (var it = root.fields(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getKey().endsWith("_token")) continue;
                JsonNode v = e.getValue();
                // Special tokens are strings or AddedToken objects {"content": ...}.
                if (v.isTextual()) specials.put(e.getKey(), v.asText());
                else if (v.isObject() && v.has("content")) specials.put(e.getKey(), v.get("content").asText());
            }
            template = templateText(tc, root.get("chat_template"));
            if (template != null) source = tc.toString();
        }
        Path ctJson = modelDir.resolve("chat_template.json");
        if (Files.isRegularFile(ctJson)) {
            String t = templateText(ctJson, readJson(ctJson).get("chat_template"));
            if (t != null) {
                template = t;
                source = ctJson.toString();
            }
        }
        Path jinja = modelDir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                template = Files.readString(jinja);
                source = jinja.toString();
            } catch (IOException e) {
                throw new BadInputException(jinja + ": cannot read: " + e.getMessage());
            }
        }
        if (template == null) {
            ChatTemplate fb = llavaFallback();
            fb.specialTokens.putAll(specials);
            return fb;
        }
        return new ChatTemplate(source, template, false, specials);
    }

    private static JsonNode readJson(Path f) {
        try {
            JsonNode n = JSON.readTree(f.toFile());
            if (n == null || !n.isObject()) throw new BadInputException(f + ": not a JSON object");
            return n;
        } catch (IOException e) {
            throw new BadInputException(f + ": not valid JSON: " + e.getMessage());
        }
    }

    /** chat_template is a string, or a list of {name, template} of which "default" is used. */
    private static String templateText(Path f, JsonNode t) {
        if (t == null || t.isNull()) return null;
        if (t.isTextual()) return t.asText();
        if (t.isArray()) {
            for (JsonNode e : t) if (e.path("name").asText().equals("default")) return e.path("template").asText();
            throw new BadInputException(f + ": chat_template is a list without a \"default\" entry");
        }
        throw new BadInputException(f + ": chat_template must be a string or a list of {name, template}");
    }

    /** True when the model has no template and LLaVA-1.5's format is used. */
    public boolean isFallback() { return fallback; }

    /** Where the template came from (a file path, or a description). */
    public String source() { return source; }

    public String template() { return template; }

    /** A special token's text as the template sees it (e.g. "eos_token"), or null. */
    public String specialToken(String name) {
        Object v = specialTokens.get(name);
        return v == null ? null : v.toString();
    }

    /** Renders messages; addGenerationPrompt appends the assistant's turn opener. */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        Map<String, Object> ctx = new LinkedHashMap<>(specialTokens);
        List<Map<String, Object>> msgs = new ArrayList<>();
        for (Message m : messages) {
            List<Map<String, Object>> parts = new ArrayList<>();
            for (Part p : m.content()) {
                Map<String, Object> pm = new LinkedHashMap<>();
                pm.put("type", p.type());
                if (p.text() != null) pm.put("text", p.text());
                parts.add(pm);
            }
            Map<String, Object> mm = new LinkedHashMap<>();
            mm.put("role", m.role());
            mm.put("content", parts);
            msgs.add(mm);
        }
        ctx.put("messages", msgs);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        RenderResult r;
        try {
            r = jinjava.renderForResult(prepared, ctx);
        } catch (TemplateException e) {
            throw new BadInputException(source + ": chat template raised: " + e.getMessage());
        } catch (RuntimeException e) {
            throw new BadInputException(source + ": chat template failed: " + e.getMessage());
        }
        for (TemplateError err : r.getErrors()) {
            if (err.getSeverity() == TemplateError.ErrorType.FATAL) {
                Throwable cause = err.getException();
                while (cause != null && !(cause instanceof TemplateException)) cause = cause.getCause();
                if (cause != null) throw new BadInputException(source + ": chat template raised: " + cause.getMessage());
                throw new BadInputException(source + ": chat template failed (line " + err.getLineno() + "): " + err.getMessage());
            }
        }
        String out = r.getOutput();
        if (!out.endsWith(END)) throw new BadInputException(source + ": chat template output was cut short");
        return out.substring(0, out.length() - END.length());
    }
}
