package casp.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Opening a sharded safetensors folder ({@link WeightStore#open}): the index, three shard headers
 * and the tensor table of a 32-layer Llama's 291 tensor names (small F16 tensors, so the folder is
 * ~4 MiB in a temporary directory: what is timed is the parsing and checking, not the disk).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class SafeTensorsOpenBenchmark {
    static final int LAYERS = 32, SHARDS = 3;
    static final String[] LAYER_TENSORS = {
        "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
        "self_attn.o_proj.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
        "mlp.down_proj.weight"};

    Path dir;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dir = Files.createTempDirectory("casp-bench-shards");
        Map<String, String> weightMap = new LinkedHashMap<>();
        SafeTensorsWriter[] shards = new SafeTensorsWriter[SHARDS];
        for (int s = 0; s < SHARDS; s++) shards[s] = new SafeTensorsWriter().metadata("format", "pt");
        float[] small = new float[64 * 64];
        add(shards[0], weightMap, "model.embed_tokens.weight", 0, small);
        for (int l = 0; l < LAYERS; l++) {
            int s = l * SHARDS / LAYERS;
            for (String t : LAYER_TENSORS) add(shards[s], weightMap, "model.layers." + l + "." + t, s, small);
        }
        add(shards[SHARDS - 1], weightMap, "model.norm.weight", SHARDS - 1, small);
        add(shards[SHARDS - 1], weightMap, "lm_head.weight", SHARDS - 1, small);
        for (int s = 0; s < SHARDS; s++) shards[s].write(dir.resolve(shardName(s)));
        Map<String, Object> index = new LinkedHashMap<>();
        index.put("metadata", Map.of("total_size", 0));
        index.put("weight_map", weightMap);
        new ObjectMapper().writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
    }

    static String shardName(int s) {
        return String.format("model-%05d-of-%05d.safetensors", s + 1, SHARDS);
    }

    static void add(SafeTensorsWriter w, Map<String, String> weightMap, String name, int shard, float[] data) {
        w.addF16(name, new long[]{64, 64}, data);
        weightMap.put(name, shardName(shard));
    }

    @TearDown(Level.Trial)
    public void deleteFolder() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files::iterator) Files.delete(p);
        }
        Files.delete(dir);
    }

    @Benchmark
    public WeightStore openSharded() {
        return WeightStore.open(dir);
    }
}
