package casp.compress;

import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.io.TensorInfo;
import casp.kernel.Bf16;
import casp.tensor.DType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A small model stored the way the users' 7B checkpoints are: the first N decoder layers of a
 * test model, every floating-point tensor in bf16, split over two shards with a
 * model.safetensors.index.json (the layout real-size compression reads block by block).
 */
final class NarrowTwin {
    private NarrowTwin() {}

    /** Writes the twin of the model in src with its first layers decoder layers into dst. */
    static Path write(Path src, Path dst, int layers) throws IOException {
        Files.createDirectories(dst);
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(src.resolve("config.json").toFile());
        ObjectNode text = config.has("text_config") ? (ObjectNode) config.get("text_config") : config;
        text.put("num_hidden_layers", layers);
        json.writerWithDefaultPrettyPrinter().writeValue(dst.resolve("config.json").toFile(), config);
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(src)) {
            for (Path f : ds) {
                String n = f.getFileName().toString();
                if (Files.isRegularFile(f) && !n.endsWith(".safetensors") && !n.equals("config.json") && !n.endsWith(".index.json"))
                    Files.copy(f, dst.resolve(n));
            }
        }
        SafeTensorsFile in = SafeTensorsFile.open(src.resolve("model.safetensors"));
        List<String> names = new ArrayList<>();
        for (String name : in.tensors().keySet()) if (keep(name, layers)) names.add(name);
        ObjectNode index = json.createObjectNode();
        ObjectNode map = index.putObject("weight_map");
        int half = names.size() / 2;
        for (int shard = 0; shard < 2; shard++) {
            String file = String.format("model-%05d-of-00002.safetensors", shard + 1);
            SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
            for (String name : shard == 0 ? names.subList(0, half) : names.subList(half, names.size())) {
                TensorInfo t = in.info(name);
                float[] v = in.readFloats(name);
                w.add(name, DType.BF16, t.shape(), out -> {
                    ByteBuffer b = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                    for (float x : v) b.putShort(Bf16.fromFloat(x));
                    b.flip();
                    while (b.hasRemaining()) out.write(b);
                });
                map.put(name, file);
            }
            w.write(dst.resolve(file));
        }
        json.writerWithDefaultPrettyPrinter().writeValue(dst.resolve("model.safetensors.index.json").toFile(), index);
        return dst;
    }

    private static boolean keep(String name, int layers) {
        int at = name.indexOf(".layers.");
        if (at < 0 || name.contains("vision_tower")) return true;
        int end = name.indexOf('.', at + 8);
        return Integer.parseInt(name.substring(at + 8, end)) < layers;
    }
}
