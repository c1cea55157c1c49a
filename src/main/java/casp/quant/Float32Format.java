package casp.quant;

import casp.io.BadInputException;
import casp.io.ModelFolder;
import casp.io.SafeTensorsFile;
import casp.io.TensorInfo;
import casp.model.DenseLinear;
import casp.model.Linear;

import java.util.Arrays;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A weight kept as float32, {@code prefix.weight} [rows, cols]: the form of a low-rank factor left
 * unquantized. Not in {@link Formats#ALL}: a decoder linear stored as a float weight is simply not
 * compressed.
 */
public final class Float32Format implements StorageFormat {
    public static final Float32Format INSTANCE = new Float32Format();

    private Float32Format() {}

    @Override public String name() { return "float32"; }

    @Override
    public boolean storedAt(Predicate<String> has, String prefix) {
        return has.test(prefix + ".weight");
    }

    @Override
    public CompressedLayer read(SafeTensorsFile st, String prefix, String method, int rows, int cols, int bits, Map<String, Number> stats) {
        return new Float32Layer(rows, cols, st.readFloats(prefix + ".weight"));
    }

    @Override
    public Linear load(ModelFolder folder, String prefix, int in, int out, float[] bias) {
        String name = prefix + ".weight";
        if (!folder.weights().has(name)) return null;
        TensorInfo t = folder.weights().info(name);
        if (t.shape().length != 2 || t.shape()[0] != out || t.shape()[1] != in)
            throw new BadInputException(folder.dir() + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape())
                    + ", expected [" + out + ", " + in + "]");
        return new DenseLinear(in, out, folder.weights().floats(name, out, in), bias);
    }

    /** A float32 weight [rows, cols] (used as it is, not copied). */
    public record Float32Layer(int rows, int cols, float[] weight) implements CompressedLayer {
        public Float32Layer {
            if (weight.length != (long) rows * cols) throw new IllegalArgumentException("weight is not " + rows + " x " + cols);
        }

        @Override public String method() { return "float32"; }
        @Override public StorageFormat format() { return INSTANCE; }
        @Override public int bits() { return 0; }
        @Override public float[] dequantize() { return weight.clone(); }
        @Override public long storageBits() { return 32L * rows * cols; }
        @Override public double effectiveBits() { return 32; }
        @Override public Map<String, Number> stats() { return Map.of(); }

        @Override
        public void write(casp.io.SafeTensorsWriter w, String prefix) {
            w.addFloats(prefix + ".weight", new long[]{rows, cols}, weight);
        }

        @Override
        public Linear linear(float[] bias) {
            return new DenseLinear(cols, rows, weight, bias);
        }
    }
}
