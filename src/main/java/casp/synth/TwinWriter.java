package casp.synth;

import casp.io.BadInputException;
import casp.io.SafeTensorsWriter;
import casp.kernel.Parallel;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import java.util.stream.Stream;

/**
 * Writes a shape twin: a Hugging Face model folder with a config's exact tensor layout
 * ({@link TwinLayout}) filled with seeded random values, sharded as save_pretrained shards
 * (model.safetensors, or model-0000k-of-0000n.safetensors and model.safetensors.index.json when the
 * tensors exceed one shard), with tokenizer.json, tokenizer_config.json, generation_config.json and,
 * for LLaVA models, preprocessor_config.json. Values are generated in 1M-element chunks straight
 * into the file, so memory stays small whatever the model's size; each chunk has its own seed, so
 * the output does not depend on the number of threads. Everything is written under a temporary
 * folder beside the target and renamed when complete.
 */
public final class TwinWriter {
    /** save_pretrained's default largest shard (5 GB). */
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;
    private static final int CHUNK = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final ObjectNode config;
    private final DType dtype;
    private final long seed;
    private final long shardBytes;
    private final List<TwinLayout.Tensor> tensors;

    /**
     * config: a config.json (modified: num_hidden_layers when layers is not null, torch_dtype);
     * dtype null keeps the config's torch_dtype.
     */
    public TwinWriter(ObjectNode config, Integer layers, DType dtype, long seed, long shardBytes, String where) {
        ObjectNode text = config.has("text_config") ? (ObjectNode) config.get("text_config") : config;
        if (layers != null) {
            if (layers < 1) throw new BadInputException("--layers must be at least 1 (got " + layers + ")");
            text.put("num_hidden_layers", layers);
        }
        if (dtype == null) dtype = fromTorch(config.path("torch_dtype").asText(text.path("torch_dtype").asText("float32")), where);
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) throw new IllegalArgumentException("dtype " + dtype);
        String torch = dtype == DType.F32 ? "float32" : dtype == DType.F16 ? "float16" : "bfloat16";
        config.put("torch_dtype", torch);
        if (text != config) text.put("torch_dtype", torch);
        if (config.has("vision_config")) ((ObjectNode) config.get("vision_config")).put("torch_dtype", torch);
        if (shardBytes <= 0) throw new BadInputException("--max-shard-size must be positive");
        this.config = config;
        this.dtype = dtype;
        this.seed = seed;
        this.shardBytes = shardBytes;
        this.tensors = TwinLayout.of(config, where);
    }

    private static DType fromTorch(String name, String where) {
        return switch (name) {
            case "float32" -> DType.F32;
            case "float16" -> DType.F16;
            case "bfloat16" -> DType.BF16;
            default -> throw new BadInputException(where + ": torch_dtype '" + name + "' is not float32, float16 or bfloat16 (use --dtype)");
        };
    }

    public List<TwinLayout.Tensor> tensors() { return tensors; }

    public DType dtype() { return dtype; }

    /** Bytes of tensor data the folder will hold. */
    public long totalBytes() {
        long n = 0;
        for (TwinLayout.Tensor t : tensors) n += t.numel() * dtype.bytes();
        return n;
    }

    /** Tensor lists per shard: a new shard starts when the next tensor would push it past shardBytes. */
    List<List<TwinLayout.Tensor>> shards() {
        List<List<TwinLayout.Tensor>> shards = new ArrayList<>();
        List<TwinLayout.Tensor> current = new ArrayList<>();
        long size = 0;
        for (TwinLayout.Tensor t : tensors) {
            long b = t.numel() * dtype.bytes();
            if (!current.isEmpty() && size + b > shardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(t);
            size += b;
        }
        shards.add(current);
        return shards;
    }

    /** Writes the folder out (which must not exist); progress receives the bytes of tensor data written so far. */
    public void write(Path out, LongConsumer progress) throws IOException {
        if (Files.exists(out)) throw new BadInputException("--out " + out + " already exists");
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new BadInputException("--out " + out + ": parent folder does not exist");
        Path tmp = parent.resolve(out.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.createDirectories(tmp);
        try {
            writeFiles(tmp, progress);
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    private void writeFiles(Path dir, LongConsumer progress) throws IOException {
        JSON.writeValue(dir.resolve("config.json").toFile(), config);
        ObjectNode text = config.has("text_config") ? (ObjectNode) config.get("text_config") : config;
        boolean llava = config.has("vision_config");
        Map<Integer, String> added = TwinTokenizer.addedTokens(config);
        ObjectNode gen = JSON.createObjectNode();
        gen.put("bos_token_id", text.path("bos_token_id").asInt(1));
        gen.put("eos_token_id", text.path("eos_token_id").asInt(2));
        if (config.has("pad_token_id")) gen.put("pad_token_id", config.get("pad_token_id").asInt());
        JSON.writeValue(dir.resolve("generation_config.json").toFile(), gen);
        new ObjectMapper().writeValue(dir.resolve("tokenizer.json").toFile(),
                TwinTokenizer.tokenizerJson(text.path("vocab_size").asInt(), added));
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(),
                TwinTokenizer.tokenizerConfig(added, llava, text.path("max_position_embeddings").asInt(2048)));
        if (llava) JSON.writeValue(dir.resolve("preprocessor_config.json").toFile(), preprocessorConfig());

        List<List<TwinLayout.Tensor>> shards = shards();
        Map<String, String> weightMap = new TreeMap<>();
        long[] written = {0};
        int index = 0;
        for (int s = 0; s < shards.size(); s++) {
            String file = shards.size() == 1 ? "model.safetensors"
                    : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
            SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
            for (TwinLayout.Tensor t : shards.get(s)) {
                long tensorSeed = mix(seed, index++);
                w.add(t.name(), dtype, t.shape(), ch -> fill(t, tensorSeed, ch, n -> progress.accept(written[0] += n)));
                weightMap.put(t.name(), file);
            }
            w.write(dir.resolve(file));
        }
        if (shards.size() > 1) {
            ObjectNode idx = JSON.createObjectNode();
            idx.putObject("metadata").put("total_size", totalBytes());
            ObjectNode map = idx.putObject("weight_map");
            weightMap.forEach(map::put);
            JSON.writeValue(dir.resolve("model.safetensors.index.json").toFile(), idx);
        }
    }

    /** CLIPImageProcessor settings of the LLaVA checkpoints (LLaVA-NeXT adds its anyres grid). */
    private ObjectNode preprocessorConfig() {
        int size = config.get("vision_config").path("image_size").asInt();
        ObjectNode p = JSON.createObjectNode();
        p.putObject("crop_size").put("height", size).put("width", size);
        p.put("do_center_crop", true);
        p.put("do_convert_rgb", true);
        p.put("do_normalize", true);
        p.put("do_rescale", true);
        p.put("do_resize", true);
        p.putArray("image_mean").add(0.48145466).add(0.4578275).add(0.40821073);
        p.putArray("image_std").add(0.26862954).add(0.26130258).add(0.27577711);
        boolean next = config.has("image_grid_pinpoints");
        p.put("image_processor_type", next ? "LlavaNextImageProcessor" : "CLIPImageProcessor");
        if (next) {
            p.set("image_grid_pinpoints", config.get("image_grid_pinpoints"));
            p.put("do_pad", true);
        }
        p.put("resample", 3);
        p.put("rescale_factor", 1.0 / 255);
        p.putObject("size").put("shortest_edge", size);
        return p;
    }

    /** Streams tensor t's values to ch, a batch of chunks at a time generated in parallel. */
    private void fill(TwinLayout.Tensor t, long tensorSeed, WritableByteChannel ch, LongConsumer bytesWritten) throws IOException {
        long n = t.numel();
        int esz = dtype.bytes();
        long chunks = (n + CHUNK - 1) / CHUNK;
        int batch = (int) Math.min(chunks, 2L * Parallel.threads());
        ByteBuffer buf = ByteBuffer.allocate(batch * CHUNK * esz).order(ByteOrder.LITTLE_ENDIAN);
        for (long c0 = 0; c0 < chunks; c0 += batch) {
            final long first = c0;
            int count = (int) Math.min(batch, chunks - c0);
            Parallel.forRange(count, i -> {
                long chunk = first + i, start = chunk * CHUNK;
                int len = (int) Math.min(CHUNK, n - start);
                fillChunk(t, mix(tensorSeed, chunk), buf, i * CHUNK * esz, len);
            });
            long end = Math.min(n, (first + count) * CHUNK);
            int bytes = (int) ((end - first * CHUNK) * esz);
            ByteBuffer out = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            out.position(0).limit(bytes);
            while (out.hasRemaining()) ch.write(out);
            bytesWritten.accept(bytes);
        }
    }

    /** len values of tensor t into buf from byte offset off: normal(0, std) by Box-Muller, or constants. */
    private void fillChunk(TwinLayout.Tensor t, long chunkSeed, ByteBuffer buf, int off, int len) {
        SplittableRandom r = new SplittableRandom(chunkSeed);
        for (int i = 0; i < len; i += 2) {
            float a, b;
            if (t.fill() == TwinLayout.Fill.NORMAL) {
                double u1 = ((r.nextLong() >>> 11) + 1) * 0x1p-53, u2 = (r.nextLong() >>> 11) * 0x1p-53;
                double radius = t.std() * Math.sqrt(-2 * Math.log(u1)), angle = 2 * Math.PI * u2;
                a = (float) (radius * Math.cos(angle));
                b = (float) (radius * Math.sin(angle));
            } else {
                a = b = t.fill() == TwinLayout.Fill.ONES ? 1f : 0f;
            }
            put(buf, off, i, a);
            if (i + 1 < len) put(buf, off, i + 1, b);
        }
    }

    private void put(ByteBuffer buf, int off, int i, float v) {
        switch (dtype) {
            case F32 -> buf.putFloat(off + i * 4, v);
            case F16 -> buf.putShort(off + i * 2, DType.floatToF16(v));
            default -> buf.putShort(off + i * 2, DType.floatToBf16(v));
        }
    }

    /** A well-spread seed from a seed and an index (SplitMix64's finalizer). */
    private static long mix(long seed, long index) {
        long z = seed + 0x9E3779B97F4A7C15L * (index + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
