package casp.model;

import casp.io.SafeTensorsFile;
import casp.io.SafeTensorsWriter;
import casp.kernel.Fp16;
import casp.tensor.DType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Predicate;
import java.util.stream.Stream;

/** Copies of model folders with chosen tensors stored in 16 bits, or as F32 holding the same rounded values. */
final class HalfFolders {
    private HalfFolders() {}

    /**
     * Copies src into dir with the tensors named by which stored as dtype (F16 or BF16) when half,
     * else as F32 holding the dtype-rounded values; other files and tensors are copied unchanged.
     */
    static Path rewrite(Path src, Path dir, Predicate<String> which, DType dtype, boolean half) throws IOException {
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().endsWith(".safetensors")) {
                    Files.copy(f, dir.resolve(f.getFileName()));
                    continue;
                }
                SafeTensorsFile in = SafeTensorsFile.open(f);
                SafeTensorsWriter out = new SafeTensorsWriter();
                for (String name : in.tensors().keySet()) {
                    if (!which.test(name)) {
                        out.copy(in, name);
                        continue;
                    }
                    float[] w = in.readFloats(name);
                    short[] h = new short[w.length];
                    for (int i = 0; i < w.length; i++) {
                        h[i] = dtype == DType.F16 ? Fp16.fromFloat(w[i]) : DType.floatToBf16(w[i]);
                        w[i] = dtype == DType.F16 ? Fp16.toFloat(h[i]) : DType.bf16ToFloat(h[i]);
                    }
                    if (half) {
                        out.add(name, dtype, in.info(name).shape(), ch -> {
                            ByteBuffer buf = ByteBuffer.allocate(h.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                            buf.asShortBuffer().put(h);
                            while (buf.hasRemaining()) ch.write(buf);
                        });
                    } else {
                        out.addFloats(name, in.info(name).shape(), w);
                    }
                }
                out.write(dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }
}
