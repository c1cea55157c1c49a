package casp.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Shards with an index when the tensors exceed the shard size; one file otherwise; read back by WeightStore. */
class ShardedWriteTest {
    @Test
    void shardsAndIndexReadBack(@TempDir Path tmp) throws Exception {
        float[][] data = new float[5][];
        for (int i = 0; i < data.length; i++) {
            data[i] = new float[7 + 10 * i];
            for (int j = 0; j < data[i].length; j++) data[i][j] = i * 100 + j;
        }
        for (long max : new long[] {1L << 20, 200, 1}) {
            Path dir = Files.createDirectories(tmp.resolve("max" + max));
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (int i = 0; i < data.length; i++) w.addFloats("t" + i, new long[] {data[i].length}, data[i]);
            List<Path> files = w.writeSharded(dir, max);
            boolean single = max == 1L << 20;
            assertEquals(single, Files.exists(dir.resolve("model.safetensors")));
            assertEquals(!single, Files.exists(dir.resolve("model.safetensors.index.json")));
            if (max == 1) assertEquals(6, files.size(), "each tensor larger than a shard gets its own");
            if (max == 200) assertTrue(files.size() > 2 && files.size() < 6, files.toString());
            WeightStore s = WeightStore.open(dir);
            for (int i = 0; i < data.length; i++) assertArrayEquals(data[i], s.floats("t" + i));
            if (!single) assertFalse(Files.exists(dir.resolve("model.safetensors")));
        }
    }
}
