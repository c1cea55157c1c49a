package casp.kernel;

/**
 * 2-D pooling of a token grid with kernel = stride = s and no padding (torch's AvgPool2d /
 * MaxPool2d with ceil_mode off: trailing rows and columns that do not fill a window are dropped).
 * The grid is row-major tokens [side * side, channels]; the result is [(side / s)^2, channels],
 * windows in row-major order. Averages sum the window in row-major order, then divide by s * s.
 * The work is small next to the vision tower (a frame's 576 x 1024 features), so plain loops.
 */
public final class SpatialPool {
    private SpatialPool() {}

    /** Side of the pooled grid. */
    public static int pooledSide(int side, int stride) {
        return side / stride;
    }

    /** Average pooling of grid (offset off) into a new array. */
    public static float[] average(float[] grid, int off, int side, int channels, int stride) {
        return pool(grid, off, side, channels, stride, false);
    }

    /** Max pooling of grid (offset off) into a new array; NaN propagates as in torch. */
    public static float[] max(float[] grid, int off, int side, int channels, int stride) {
        return pool(grid, off, side, channels, stride, true);
    }

    private static float[] pool(float[] grid, int off, int side, int channels, int stride, boolean max) {
        int p = pooledSide(side, stride);
        float[] out = new float[p * p * channels];
        if (max) java.util.Arrays.fill(out, Float.NEGATIVE_INFINITY);
        for (int py = 0; py < p; py++) {
            for (int px = 0; px < p; px++) {
                int o = (py * p + px) * channels;
                for (int dy = 0; dy < stride; dy++)
                    for (int dx = 0; dx < stride; dx++) {
                        int src = off + ((py * stride + dy) * side + px * stride + dx) * channels;
                        for (int c = 0; c < channels; c++) {
                            float v = grid[src + c];
                            if (!max) out[o + c] += v;
                            else if (v > out[o + c] || Float.isNaN(v)) out[o + c] = v;
                        }
                    }
                if (!max) for (int c = 0; c < channels; c++) out[o + c] /= stride * stride;
            }
        }
        return out;
    }
}
