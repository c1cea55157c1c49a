package casp.compress;

import casp.io.SafeTensorsWriter;

/**
 * A quantized linear whose stored form is not the GPTQ v1 tensors (QuIP#: codes, sign vectors and
 * scale): it writes its own tensors under the linear's prefix, in place of {@code prefix.weight}.
 * {@link SequentialCompressor} puts it in {@link SequentialCompressor.LinearResult#stored()} when
 * the {@link QuantizedLayer} a quantizer returns implements this interface, and
 * {@link CompressedModelWriter} and {@link Checkpoint} write it.
 */
public interface StoredTensors {
    /** Adds the tensors to w under prefix (e.g. "model.layers.0.mlp.down_proj"; names are prefix + "." + suffix). */
    void write(SafeTensorsWriter w, String prefix);

    /** Bytes the tensors take in a file. */
    long bytes();
}
