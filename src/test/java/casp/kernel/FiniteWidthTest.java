package casp.kernel;

import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every check of {@link FiniteChecks} at each vector width (scalar, 128, 256, 512 bits), through {@link VectorWidths}. */
class FiniteWidthTest {
    static Stream<Arguments> cases() {
        return VectorWidths.cases(FiniteChecks.ALL);
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        VectorWidths.run(bits, "FiniteChecks", check);
    }
}
