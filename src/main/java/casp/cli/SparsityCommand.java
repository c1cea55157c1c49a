package casp.cli;

import casp.eval.AttentionSparsity;
import casp.io.BadInputException;
import casp.io.LlavaDataset;
import casp.io.ModelFolder;
import casp.io.Tokenizer;
import casp.model.LlamaModel;
import casp.model.LlavaModel;
import casp.report.Charts;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * `casp sparsity --model DIR --data FILE [--rank-ratio R ...] [--tau 0.01] [--json] [--out DIR]`:
 * attention sparsity, visual attention mass and MSE(S - S') after low-rank Q/K, per layer and head,
 * grouped by the share of visual tokens in the input (ALGORITHMS.md section 4;
 * {@link AttentionSparsity}). Text models read a UTF-8 text file cut into windows.
 */
@Command(name = "sparsity", mixinStandardHelpOptions = true,
        description = "Attention sparsity per layer and head, the attention mass on visual tokens, and MSE(S - S') "
                + "after whitened low-rank Q/K at the given rank ratios, grouped by the share of visual tokens.")
public final class SparsityCommand implements Callable<Integer> {
    @Mixin
    WeightsOption weights = new WeightsOption();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "uncompressed Hugging Face model folder")
    Path modelDir;

    @Option(names = "--data", required = true, paramLabel = "FILE",
            description = "UTF-8 text file (text models) or LLaVA conversation JSON (LLaVA models)")
    Path data;

    @Option(names = "--images", paramLabel = "DIR", description = "images of a LLaVA --data/--calib file (default: its folder's images/)")
    Path images;

    @Mixin
    VideoFramesOption frames;

    @Option(names = "--text-tokens", paramLabel = "N", split = ",", defaultValue = "8,32,96,256",
            description = "LLaVA: each sample is analysed with this many text tokens after the image (its conversation, "
                    + "continued with the next samples' text), to vary the share of visual tokens (default: ${DEFAULT-VALUE})")
    int[] textTokens;

    @Option(names = "--fixed-length", paramLabel = "L",
            description = "LLaVA: instead of --text-tokens, inputs of exactly L tokens holding 0, 1, 2, ... images "
                    + "(--images-per-input) and text filling the rest, so the visual share varies at a fixed length")
    Integer fixedLength;

    @Option(names = "--images-per-input", paramLabel = "K", split = ",", defaultValue = "0,1,2,3",
            description = "LLaVA with --fixed-length: images per input (default: ${DEFAULT-VALUE})")
    int[] imagesPerInput;

    @Option(names = "--calib", paramLabel = "FILE",
            description = "inputs whose q/k statistics build the low-rank factors (default: the --data inputs)")
    Path calib;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "8", description = "inputs analysed (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--seq-len", paramLabel = "N", defaultValue = "128",
            description = "tokens per text window (default: ${DEFAULT-VALUE})")
    int seqLen;

    @Option(names = "--rank-ratio", paramLabel = "R", split = ",", defaultValue = "0.25",
            description = "rank ratios rho of the low-rank Q/K, comma-separated or repeated (default: ${DEFAULT-VALUE})")
    double[] ratios;

    @Option(names = "--tau", paramLabel = "T", defaultValue = "0.01", description = "sparsity threshold (default: ${DEFAULT-VALUE})")
    double tau;

    @Option(names = "--json", description = "print the results as one JSON object")
    boolean json;

    @Option(names = "--per-head", description = "also print the table per head")
    boolean perHead;

    @Option(names = "--out", paramLabel = "DIR", description = "write sparsity.json, sparsity.txt and sparsity.png here")
    Path out;

    @Option(names = "--force", description = "replace sparsity.json, sparsity.txt and sparsity.png already in --out")
    boolean force;

    /** The files --out receives. */
    static final List<String> OUTPUTS = List.of("sparsity.json", "sparsity.txt", "sparsity.png");

    @Override
    public Integer call() throws Exception {
        if (out != null) checkOut();
        if (samples < 1) throw new BadInputException("--samples must be >= 1, got " + samples);
        if (seqLen < 2) throw new BadInputException("--seq-len must be >= 2, got " + seqLen);
        if (!(tau > 0 && tau < 1)) throw new BadInputException("--tau must be in (0, 1), got " + tau);
        for (double r : ratios) if (!(r > 0 && r <= 1)) throw new BadInputException("--rank-ratio must be in (0, 1], got " + r);
        if (!Files.isRegularFile(data)) throw new BadInputException("--data " + data + ": no such file");
        if (calib != null && !Files.isRegularFile(calib)) throw new BadInputException("--calib " + calib + ": no such file");
        ModelFolder folder = weights.open(modelDir);
        if (folder.config().quantization() != null)
            throw new BadInputException(modelDir + ": the model is compressed; analyse the uncompressed one");
        boolean llavaData = data.getFileName().toString().endsWith(".json");
        int maxPos = folder.config().text().maxPositions();
        LlamaModel model;
        List<AttentionSparsity.Input> inputs, calInputs;
        if (llavaData) {
            if (!folder.config().isLlava()) throw new BadInputException("--data " + data + " is conversation JSON but " + modelDir + " is not a LLaVA model");
            for (int n : textTokens) if (n < 0) throw new BadInputException("--text-tokens must be >= 0, got " + n);
            LlavaModel llava = LlavaModel.load(folder);
            frames.applyTo(llava);
            model = llava.language();
            if (fixedLength != null) {
                if (fixedLength < 2 || fixedLength > maxPos) throw new BadInputException("--fixed-length must be in [2, " + maxPos + "], got " + fixedLength);
                inputs = fixedLengthInputs(llava, data, images, samples, imagesPerInput, fixedLength, "--data");
            } else {
                inputs = llavaInputs(llava, data, images, samples, textTokens, maxPos, "--data");
            }
            calInputs = calib == null ? llavaInputs(llava, data, images, samples, null, maxPos, "--data")
                    : llavaInputs(llava, calib, images, samples, null, maxPos, "--calib");
        } else {
            if (frames.frames > 0) throw new BadInputException("--frames needs LLaVA conversation data (--data *.json) with video records");
            if (seqLen > maxPos) throw new BadInputException("--seq-len " + seqLen + " exceeds the model's max_position_embeddings " + maxPos);
            model = LlamaModel.load(folder);
            Tokenizer tok = Tokenizer.load(folder.dir());
            inputs = textInputs(model, tok, data, samples, seqLen, "--data");
            calInputs = calib == null ? inputs : textInputs(model, tok, calib, samples, seqLen, "--calib");
        }

        AttentionSparsity.Options opt = AttentionSparsity.Options.defaults(ratios);
        opt = new AttentionSparsity.Options(tau, ratios, opt.binEdges());
        AttentionSparsity.Result r;
        try (Progress p = new Progress("sparsity", model.numLayers(), "layers")) {
            r = AttentionSparsity.analyze(model, inputs, calInputs, opt, (done, total) -> p.set(done));
        }
        String table = table(r, perHead);
        ObjectNode js = toJson(r);
        js.put("model", modelDir.toString());
        js.put("data", data.toString());
        js.put("inputs", inputs.size());
        if (!llavaData) js.put("seq_len", seqLen);
        if (json) System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(js));
        else System.out.print(table);
        if (out != null) {
            Files.createDirectories(out);
            writeAtomically(out.resolve("sparsity.txt"), table);
            writeAtomically(out.resolve("sparsity.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(js));
            Charts.sparsity(r, "Attention sparsity and MSE(S - S'): " + Charts.modelName(folder.dir()), out.resolve("sparsity.png"));
            if (!json) System.out.println("wrote " + out.resolve("sparsity.txt") + ", sparsity.json, sparsity.png");
        }
        return 0;
    }

    /** Refuses to overwrite earlier results without --force, and an unwritable --out, before the analysis. */
    private void checkOut() {
        if (Files.exists(out) && !Files.isDirectory(out)) throw new BadInputException("--out " + out + " exists and is not a folder");
        for (String f : OUTPUTS) {
            if (!force && Files.exists(out.resolve(f)))
                throw new BadInputException("--out " + out + " already holds " + f + "; pass --force to replace it");
        }
        casp.compress.OutputTarget.checkWritable("--out", out.resolve(OUTPUTS.get(0)));
    }

    /** The first n non-overlapping windows of seqLen tokens of the file (encoded once, with BOS). */
    static List<AttentionSparsity.Input> textInputs(LlamaModel model, Tokenizer tok, Path file, int n, int seqLen, String flag) {
        int[] ids = tok.encode(EvalPplCommand.readUtf8(file), true);
        int windows = Math.min(n, ids.length / seqLen);
        if (windows == 0) throw new BadInputException(flag + " " + file + " has " + ids.length + " tokens, fewer than one window of " + seqLen);
        List<AttentionSparsity.Input> out = new ArrayList<>();
        for (int w = 0; w < windows; w++) {
            int[] win = Arrays.copyOfRange(ids, w * seqLen, (w + 1) * seqLen);
            out.add(new AttentionSparsity.Input(model.embed(win), seqLen, null));
        }
        return out;
    }

    /**
     * LLaVA inputs: each of the first n samples' whole conversation (chat template, image / video
     * expanded), its image and video positions marked visual. With textTokens, one input per count:
     * the tokens up to the last visual position, then that many text tokens (the conversation's own, continued with the following
     * samples' text), capped at maxPos; null keeps the conversation as it is.
     */
    static List<AttentionSparsity.Input> llavaInputs(LlavaModel m, Path json, Path imagesDir, int n, int[] textTokens, int maxPos,
                                                     String flag) {
        Path dir = imagesDir != null ? imagesDir : json.toAbsolutePath().getParent().resolve("images");
        List<int[]> ids = new ArrayList<>();
        List<Integer> split = new ArrayList<>(); // index after the last visual position
        List<LlavaDataset.Sample> visualSamples = new ArrayList<>();
        long textTotal = 0;
        for (LlavaDataset.Sample s : LlavaDataset.load(json, dir)) {
            if (s.image() == null && s.video() == null) continue;
            int[] x = m.promptIds(s.messages(true), false, s.image(), s.video());
            int last = -1;
            for (int i = 0; i < x.length; i++) if (m.isVisual(x[i])) last = i;
            if (last + 1 > maxPos) throw new BadInputException(flag + " " + json + ": sample " + s.id() + " does not fit " + maxPos + " positions");
            ids.add(x);
            split.add(last + 1);
            visualSamples.add(s);
            textTotal += x.length - (last + 1);
        }
        if (ids.isEmpty()) throw new BadInputException(flag + " " + json + ": no sample with an image or a video");
        int count = Math.min(n, ids.size());
        List<AttentionSparsity.Input> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            LlavaModel.Media media = m.encode(visualSamples.get(i).image(), visualSamples.get(i).video(), 0);
            int[] x = ids.get(i);
            List<int[]> variants = new ArrayList<>();
            if (textTokens == null) {
                variants.add(Arrays.copyOf(x, Math.min(x.length, maxPos)));
            } else {
                for (int want : textTokens) {
                    int len = (int) Math.min(Math.min(maxPos, (long) split.get(i) + want), split.get(i) + textTotal);
                    int[] seq = Arrays.copyOf(x, len); // zero-padded past the conversation, filled below
                    int pos = Math.min(x.length, len), src = i, from = x.length;
                    while (pos < len) { // continue with the following samples' text (after their image)
                        if (from >= ids.get(src).length) {
                            src = (src + 1) % ids.size();
                            from = split.get(src);
                            continue;
                        }
                        seq[pos++] = ids.get(src)[from++];
                    }
                    variants.add(seq);
                }
            }
            for (int[] seq : variants) {
                boolean[] visual = new boolean[seq.length];
                for (int t = 0; t < seq.length; t++) visual[t] = m.isVisual(seq[t]);
                out.add(new AttentionSparsity.Input(m.embed(seq, media), seq.length, visual));
            }
        }
        return out;
    }

    /**
     * LLaVA inputs of one length L: for sample i and each k, the tokens before sample i's image or
     * video, then the images / videos of samples i .. i+k-1 (each expanded to its visual tokens; a
     * sample with both contributes its video), then text tokens (sample i's conversation after its
     * visual tokens, continued with the following samples') up to L. The visual share is then about
     * k * (tokens per image or video) / L at a fixed sequence length.
     */
    static List<AttentionSparsity.Input> fixedLengthInputs(LlavaModel m, Path json, Path imagesDir, int n, int[] perInput, int L,
                                                           String flag) {
        Path dir = imagesDir != null ? imagesDir : json.toAbsolutePath().getParent().resolve("images");
        List<int[]> ids = new ArrayList<>();
        List<Integer> first = new ArrayList<>(), after = new ArrayList<>();
        List<LlavaDataset.Sample> visualSamples = new ArrayList<>();
        for (LlavaDataset.Sample s : LlavaDataset.load(json, dir)) {
            if (s.image() == null && s.video() == null) continue;
            int[] x = m.promptIds(s.messages(true), false, s.image(), s.video());
            int f = -1, last = -1;
            for (int i = 0; i < x.length; i++) {
                if (!m.isVisual(x[i])) continue;
                if (f < 0) f = i;
                last = i;
            }
            ids.add(x);
            first.add(f);
            after.add(last + 1);
            visualSamples.add(s);
        }
        if (ids.isEmpty()) throw new BadInputException(flag + " " + json + ": no sample with an image or a video");
        int h = m.language().hiddenSize();
        List<AttentionSparsity.Input> out = new ArrayList<>();
        int count = Math.min(n, ids.size());
        for (int i = 0; i < count; i++) {
            for (int k : perInput) {
                if (k < 0) throw new BadInputException("--images-per-input must be >= 0, got " + k);
                int head = first.get(i);
                int[] seq = new int[L];
                System.arraycopy(ids.get(i), 0, seq, 0, head);
                int pos = head;
                List<float[]> imgs = new ArrayList<>(), vids = new ArrayList<>();
                for (int j = 0; j < k; j++) {
                    LlavaDataset.Sample vs = visualSamples.get((i + j) % visualSamples.size());
                    boolean video = vs.video() != null;
                    float[] f = video ? m.encodeVideo(vs.video(), 0) : m.encodeImage(vs.image());
                    int per = f.length / h;
                    if (pos + (long) per >= L)
                        throw new BadInputException("--fixed-length " + L + " cannot hold " + k + " images / videos ("
                                + (j + 1) + " take " + (pos + per - head) + " tokens) and text");
                    java.util.Arrays.fill(seq, pos, pos + per, video ? m.videoTokenId() : m.imageTokenId());
                    pos += per;
                    (video ? vids : imgs).add(f);
                }
                int src = i, from = after.get(i), guard = 0;
                while (pos < L) {
                    if (from >= ids.get(src).length) {
                        src = (src + 1) % ids.size();
                        from = after.get(src);
                        if (++guard > 2 * ids.size()) throw new BadInputException(flag + " " + json + ": not enough text to fill " + L + " tokens");
                        continue;
                    }
                    seq[pos++] = ids.get(src)[from++];
                }
                boolean[] visual = new boolean[L];
                for (int t = 0; t < L; t++) visual[t] = m.isVisual(seq[t]);
                out.add(new AttentionSparsity.Input(m.embed(seq, new LlavaModel.Media(imgs, vids)), L, visual));
            }
        }
        return out;
    }

    static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.writeString(tmp, text, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The human-readable tables: per layer, per visual-share group, optionally per head. */
    static String table(AttentionSparsity.Result r, boolean perHead) {
        StringBuilder sb = new StringBuilder();
        double[] rho = r.options.ratios();
        sb.append(String.format(Locale.ROOT, "Attention sparsity (entries < %.3g of the causal map), visual attention mass, MSE(S - S') "
                + "after low-rank Q/K (each layer on the uncompressed model's input)%n", r.options.tau()));
        sb.append(String.format(Locale.ROOT, "%-6s %9s %9s", "layer", "sparsity", "vis.mass"));
        for (double x : rho) sb.append(String.format(Locale.ROOT, " %12s %9s", "mse@" + x, "q/k rank"));
        sb.append('\n');
        for (int l = 0; l < r.layers; l++) {
            AttentionSparsity.Cell c = r.cell(-1, l, -1);
            sb.append(String.format(Locale.ROOT, "%-6d %9.4f %9.4f", l, c.sparsity(), c.visualMass()));
            for (int k = 0; k < rho.length; k++)
                sb.append(String.format(Locale.ROOT, " %12.4e %9s", c.mse(k), r.qRank[k][l] + "/" + r.kRank[k][l]));
            sb.append('\n');
        }
        AttentionSparsity.Cell all = r.total(-1);
        sb.append(String.format(Locale.ROOT, "%-6s %9.4f %9.4f", "all", all.sparsity(), all.visualMass()));
        for (int k = 0; k < rho.length; k++) sb.append(String.format(Locale.ROOT, " %12.4e %9s", all.mse(k), ""));
        sb.append("\n\nBy share of visual tokens in the input:\n");
        sb.append(String.format(Locale.ROOT, "%-12s %7s %11s %9s %9s", "share bin", "inputs", "mean share", "sparsity", "vis.mass"));
        for (double x : rho) sb.append(String.format(Locale.ROOT, " %12s", "mse@" + x));
        sb.append('\n');
        double[] e = r.options.binEdges();
        for (int b = 0; b < r.inputsPerBin.length; b++) {
            if (r.inputsPerBin[b] == 0) continue;
            AttentionSparsity.Cell c = r.total(b);
            sb.append(String.format(Locale.ROOT, "%-12s %7d %11.3f %9.4f %9.4f", String.format(Locale.ROOT, "[%.1f,%.1f%s", e[b], e[b + 1],
                    b == r.inputsPerBin.length - 1 ? "]" : ")"), r.inputsPerBin[b], r.meanShare[b], c.sparsity(), c.visualMass()));
            for (int k = 0; k < rho.length; k++) sb.append(String.format(Locale.ROOT, " %12.4e", c.mse(k)));
            sb.append('\n');
        }
        if (perHead) {
            sb.append("\nPer head (all inputs):\n");
            sb.append(String.format(Locale.ROOT, "%-6s %-5s %9s %9s", "layer", "head", "sparsity", "vis.mass"));
            for (double x : rho) sb.append(String.format(Locale.ROOT, " %12s", "mse@" + x));
            sb.append('\n');
            for (int l = 0; l < r.layers; l++)
                for (int h = 0; h < r.heads; h++) {
                    AttentionSparsity.Cell c = r.cell(-1, l, h);
                    sb.append(String.format(Locale.ROOT, "%-6d %-5d %9.4f %9.4f", l, h, c.sparsity(), c.visualMass()));
                    for (int k = 0; k < rho.length; k++) sb.append(String.format(Locale.ROOT, " %12.4e", c.mse(k)));
                    sb.append('\n');
                }
        }
        return sb.toString();
    }

    static ObjectNode toJson(AttentionSparsity.Result r) {
        ObjectMapper m = new ObjectMapper();
        ObjectNode o = m.createObjectNode();
        o.put("tau", r.options.tau());
        ArrayNode rho = o.putArray("rank_ratios");
        for (double x : r.options.ratios()) rho.add(x);
        ArrayNode layers = o.putArray("layers");
        for (int l = 0; l < r.layers; l++) {
            ObjectNode lo = layers.addObject();
            lo.put("layer", l);
            cell(lo, r.cell(-1, l, -1), r.options.ratios().length);
            ArrayNode ranks = lo.putArray("low_rank");
            for (int k = 0; k < r.options.ratios().length; k++) {
                ObjectNode x = ranks.addObject();
                x.put("rank_ratio", r.options.ratios()[k]);
                x.put("q_rank", r.qRank[k][l]);
                x.put("k_rank", r.kRank[k][l]);
                x.put("q_truncation_loss", r.qLoss[k][l]);
                x.put("k_truncation_loss", r.kLoss[k][l]);
            }
            ArrayNode heads = lo.putArray("heads");
            for (int h = 0; h < r.heads; h++) cell(heads.addObject().put("head", h), r.cell(-1, l, h), r.options.ratios().length);
        }
        ArrayNode bins = o.putArray("visual_share_bins");
        double[] e = r.options.binEdges();
        for (int b = 0; b < r.inputsPerBin.length; b++) {
            ObjectNode bo = bins.addObject();
            bo.put("from", e[b]);
            bo.put("to", e[b + 1]);
            bo.put("inputs", r.inputsPerBin[b]);
            if (r.inputsPerBin[b] == 0) continue;
            bo.put("mean_share", r.meanShare[b]);
            cell(bo, r.total(b), r.options.ratios().length);
            ArrayNode per = bo.putArray("layers");
            for (int l = 0; l < r.layers; l++) cell(per.addObject().put("layer", l), r.cell(b, l, -1), r.options.ratios().length);
        }
        cell(o.putObject("all"), r.total(-1), r.options.ratios().length);
        return o;
    }

    private static void cell(ObjectNode o, AttentionSparsity.Cell c, int ratios) {
        o.put("sparsity", c.sparsity());
        o.put("visual_mass", c.visualMass());
        ArrayNode mse = o.putArray("mse");
        for (int k = 0; k < ratios; k++) mse.add(c.mse(k));
    }
}
