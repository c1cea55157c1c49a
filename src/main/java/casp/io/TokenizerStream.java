package casp.io;

import it.unimi.dsi.fastutil.ints.IntArrayList;

/**
 * Incremental decoding of generated ids: {@link #push(int)} returns the text that the new id
 * completes, so that the concatenation of everything returned (plus {@link #flush()}) equals
 * decode(context + ids) minus decode(context). Text is held back while the decoded tail ends in
 * U+FFFD, i.e. while a UTF-8 character split over several byte tokens is incomplete.
 *
 * <p>How: keep a window of ids whose first part (the context) has been returned already; decode
 * the whole window and return what goes beyond the context's text. After returning, the ids just
 * returned become the new context, so each step decodes only a few ids while the decoder still
 * sees a left neighbour (the Llama decoder strips the space of the very first token only).
 * Not thread-safe: one stream per generation.
 */
public final class TokenizerStream {
    private final Tokenizer tokenizer;
    private final boolean skipSpecial;
    private final IntArrayList window = new IntArrayList();
    private int contextLen;
    private String contextText;

    TokenizerStream(Tokenizer tokenizer, int[] contextIds, boolean skipSpecial) {
        this.tokenizer = tokenizer;
        this.skipSpecial = skipSpecial;
        window.addElements(0, contextIds);
        contextLen = contextIds.length;
        contextText = tokenizer.decode(contextIds, skipSpecial);
    }

    /**
     * Adds one generated id and returns the text it completes ("" while a character is
     * incomplete or the token has no text, e.g. a skipped special token).
     *
     * @throws BadInputException for an id that is not in the vocabulary
     */
    public String push(int id) {
        tokenizer.token(id); // validates the id
        window.add(id);
        String full = decodeWindow();
        if (full.length() <= contextText.length() || full.endsWith("\uFFFD")) return "";
        String out = emit(full);
        // The ids just returned become the context of the next step.
        window.removeElements(0, contextLen);
        contextLen = window.size();
        contextText = decodeWindow();
        return out;
    }

    /** Returns whatever is held back (an incomplete character decodes to U+FFFD) and keeps going. */
    public String flush() {
        String full = decodeWindow();
        String out = full.length() > contextText.length() ? emit(full) : "";
        window.removeElements(0, contextLen);
        contextLen = window.size();
        contextText = decodeWindow();
        return out;
    }

    private String emit(String full) {
        // For valid text the context's text is a prefix of the window's text. Invalid byte runs
        // that straddle the boundary can rewrite it (all bytes become U+FFFD); what was returned
        // cannot be taken back, so return the part beyond its length.
        return full.substring(Math.min(contextText.length(), full.length()));
    }

    private String decodeWindow() {
        return tokenizer.decode(window.elements(), 0, window.size(), skipSpecial);
    }
}
