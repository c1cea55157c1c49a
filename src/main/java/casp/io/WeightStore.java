package casp.io;

import casp.tensor.DType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The tensors of a model folder: one model.safetensors, or shards listed by
 * model.safetensors.index.json ("weight_map": tensor name -> shard file).
 */
public final class WeightStore {
    private final Path dir;
    private final Map<String, SafeTensorsFile> fileOf;
    /** Where 16-bit tensors are kept at run time: MAP or HEAP (AUTO is resolved by {@link #placed}). */
    private final WeightPlacement placement;

    private WeightStore(Path dir, Map<String, SafeTensorsFile> fileOf, WeightPlacement placement) {
        this.dir = dir;
        this.fileOf = fileOf;
        this.placement = placement;
    }

    public static WeightStore open(Path dir) {
        Path single = dir.resolve("model.safetensors");
        Path index = dir.resolve("model.safetensors.index.json");
        Map<String, SafeTensorsFile> fileOf = new LinkedHashMap<>();
        if (Files.isRegularFile(index)) {
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(index.toFile());
            } catch (IOException e) {
                throw new BadInputException(index + ": cannot parse: " + e.getMessage());
            }
            JsonNode map = root == null ? null : root.get("weight_map");
            if (map == null || !map.isObject()) throw new BadInputException(index + ": missing \"weight_map\" object");
            Map<String, SafeTensorsFile> shards = new LinkedHashMap<>();
            for (var it = map.fields(); it.hasNext(); ) {
                var e = it.next();
                String shardName = e.getValue().asText();
                SafeTensorsFile shard = shards.get(shardName);
                if (shard == null) {
                    Path p = dir.resolve(shardName).normalize();
                    if (!p.startsWith(dir.normalize()) || Path.of(shardName).isAbsolute())
                        throw new BadInputException(index + ": shard '" + shardName + "' (holding tensor '" + e.getKey()
                                + "') is outside the model folder; shards must be files of the folder");
                    if (!Files.isRegularFile(p))
                        throw new BadInputException(index + ": shard '" + shardName + "' (holding tensor '" + e.getKey() + "') is missing");
                    shard = SafeTensorsFile.open(p);
                    shards.put(shardName, shard);
                }
                if (!shard.tensors().containsKey(e.getKey()))
                    throw new BadInputException(index + ": tensor '" + e.getKey() + "' is not in shard " + shard.path());
                fileOf.put(e.getKey(), shard);
            }
        } else if (Files.isRegularFile(single)) {
            SafeTensorsFile f = SafeTensorsFile.open(single);
            for (String name : f.tensors().keySet()) fileOf.put(name, f);
        } else {
            Path named = autoGptqFile(dir);
            if (named == null) throw new BadInputException(dir + ": no model.safetensors or model.safetensors.index.json");
            SafeTensorsFile f = SafeTensorsFile.open(named);
            for (String name : f.tensors().keySet()) fileOf.put(name, f);
        }
        return new WeightStore(dir, Collections.unmodifiableMap(fileOf), WeightPlacement.MAP);
    }

    /**
     * The same tensors with 16-bit ones kept as p says (a store opens with MAP); AUTO is decided
     * here, from the size of this store's F16 / BF16 tensors, the machine's memory and the heap
     * free now (see {@link WeightPlacement}).
     */
    public WeightStore placed(WeightPlacement p) {
        WeightPlacement resolved = p != WeightPlacement.AUTO ? p
                : WeightPlacement.chooseHere(sixteenBitBytes());
        return resolved == placement ? this : new WeightStore(dir, fileOf, resolved);
    }

    /** MAP or HEAP: where the run time keeps this store's 16-bit tensors. */
    public WeightPlacement placement() {
        return placement;
    }

    /** Bytes of the store's F16 and BF16 tensors. */
    public long sixteenBitBytes() {
        long n = 0;
        for (String name : names()) {
            TensorInfo t = info(name);
            if (t.dtype() == DType.F16 || t.dtype() == DType.BF16) n += t.byteSize();
        }
        return n;
    }

    /**
     * The weights file of an AutoGPTQ folder, which names it after the settings
     * ("gptq_model-4bit-128g.safetensors"; quantize_config.json's model_file_base_name when given),
     * or null when there is none.
     */
    private static Path autoGptqFile(Path dir) {
        Path settings = dir.resolve(GptqConfig.AUTOGPTQ_FILE);
        if (!Files.isRegularFile(settings)) return null;
        try {
            JsonNode n = new ObjectMapper().readTree(settings.toFile());
            String base = n == null ? "" : n.path("model_file_base_name").asText("");
            if (!base.isEmpty()) {
                Path p = dir.resolve(base + ".safetensors").normalize();
                if (!p.startsWith(dir.normalize()) || !Files.isRegularFile(p))
                    throw new BadInputException(settings + ": model_file_base_name '" + base + "' names no .safetensors file in " + dir);
                return p;
            }
        } catch (IOException e) {
            throw new BadInputException(settings + ": not valid JSON: " + e.getMessage());
        }
        try (var files = Files.list(dir)) {
            var named = files.filter(p -> p.getFileName().toString().matches("gptq_model-\\d+bit-.*\\.safetensors")).toList();
            if (named.size() > 1) throw new BadInputException(dir + ": several gptq_model-*.safetensors files and no model_file_base_name in "
                    + GptqConfig.AUTOGPTQ_FILE);
            return named.isEmpty() ? null : named.get(0);
        } catch (IOException e) {
            throw new BadInputException(dir + ": cannot list the folder: " + e.getMessage());
        }
    }

    public Path dir() {
        return dir;
    }

    public Set<String> names() {
        return fileOf.keySet();
    }

    public boolean has(String name) {
        return fileOf.containsKey(name);
    }

    public TensorInfo info(String name) {
        return file(name).info(name);
    }

    /** The file that holds a tensor. */
    public SafeTensorsFile file(String name) {
        SafeTensorsFile f = fileOf.get(name);
        if (f == null) throw new BadInputException(dir + ": model has no tensor named '" + name + "'");
        return f;
    }

    /** A floating-point tensor converted to float32. */
    public float[] floats(String name) {
        return file(name).readFloats(name);
    }

    /** A floating-point tensor converted to float32, checked against the expected shape. */
    public float[] floats(String name, long... expectedShape) {
        checkShape(name, expectedShape);
        return floats(name);
    }

    /** The raw 16-bit values of an F16 or BF16 tensor, checked against the expected shape. */
    public short[] halfs(String name, long... expectedShape) {
        checkShape(name, expectedShape);
        return file(name).readHalfs(name);
    }

    private void checkShape(String name, long... expectedShape) {
        TensorInfo t = info(name);
        if (!java.util.Arrays.equals(t.shape(), expectedShape))
            throw new BadInputException(t.name() + " in " + file(name).path() + " has shape " + java.util.Arrays.toString(t.shape())
                    + ", expected " + java.util.Arrays.toString(expectedShape));
    }

    /** The 16-bit values of an F16 or BF16 tensor memory-mapped in place ({@link SafeTensorsFile#mapHalfs}), checked against the expected shape. */
    public java.nio.ByteBuffer mappedHalfs(String name, long... expectedShape) {
        checkShape(name, expectedShape);
        return file(name).mapHalfs(name);
    }

    public int[] ints(String name) {
        return file(name).readInts(name);
    }
}
