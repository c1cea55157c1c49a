package casp.cli;

import casp.io.ModelFolder;
import casp.io.WeightPlacement;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

import java.nio.file.Path;
import java.util.Locale;

/** {@code --weights auto|map|heap} of the commands that run a model: where its 16-bit tensors are kept. */
final class WeightsOption {
    @Option(names = "--weights", paramLabel = "auto|map|heap", defaultValue = "auto", converter = Placement.class,
            description = "where F16/BF16 weights live: map = used in place from the memory-mapped files (no copy; "
                    + "the file cache holds them), heap = copied into the Java heap (a slower load; decodes ~15% faster), "
                    + "auto = heap when they take at most half of the machine's memory and fit in the free heap, "
                    + "else map (default ${DEFAULT-VALUE})")
    WeightPlacement placement = WeightPlacement.AUTO;

    /** The model folder dir with its 16-bit weights placed as --weights says. */
    ModelFolder open(Path dir) {
        if (System.getProperty("casp.mmap") != null && !warned) {
            warned = true; // the property this option replaced: say so rather than ignore it silently
            System.err.println("casp: -Dcasp.mmap is no longer read; use --weights map|heap");
        }
        return ModelFolder.open(dir).placed(placement);
    }

    private static boolean warned;

    /** Where folder's 16-bit tensors are kept, for reports: "map", "heap", or "none" when it has none. */
    static String describe(ModelFolder folder) {
        return folder.weights().sixteenBitBytes() == 0 ? "none" : folder.weights().placement().label();
    }

    static final class Placement implements ITypeConverter<WeightPlacement> {
        @Override
        public WeightPlacement convert(String value) {
            for (WeightPlacement p : WeightPlacement.values()) if (p.label().equals(value.toLowerCase(Locale.ROOT))) return p;
            throw new TypeConversionException("'" + value + "' is not one of auto, map, heap");
        }
    }
}
