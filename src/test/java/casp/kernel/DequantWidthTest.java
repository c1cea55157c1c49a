package casp.kernel;

import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every check of {@link DequantChecks} at each vector width (scalar, 128, 256, 512 bits), through {@link VectorWidths}. */
class DequantWidthTest {
    static Stream<Arguments> cases() {
        return VectorWidths.cases(DequantChecks.ALL);
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        VectorWidths.run(bits, "DequantChecks", check);
    }

    /** The row-lane kernels with codes converted to float (CPUs with slow denormals), at the widest width. */
    @ParameterizedTest(name = "{0} with converted codes")
    @MethodSource("checks")
    void checkWithConvertedCodes(String check) throws Throwable {
        VectorWidths.runConverting("DequantChecks", check);
    }

    static Stream<String> checks() {
        return Stream.of(DequantChecks.ALL);
    }
}
