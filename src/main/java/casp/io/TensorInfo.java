package casp.io;

import casp.tensor.DType;

import java.util.Arrays;

/** One tensor's entry in a safetensors header: dtype, shape and byte range inside the data section. */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    /** Number of elements (1 for a scalar of shape []). */
    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public long byteSize() {
        return end - begin;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
