package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Runs every check of {@link KernelChecks} at each vector width (scalar, 128, 256, 512 bits) in one
 * JVM, through {@link VectorWidths}. The JVM's own width is left out here: GemmTest, SyrkTest,
 * CholeskyTest, TriangularTest, DecompUtilTest, Blas1Test and FwhtTest run every one of these checks at it.
 */
class VectorWidthTest {
    static Stream<Arguments> cases() {
        return VectorWidths.cases(VectorWidths.distinctWidths().filter(b -> b != VectorWidths.defaultBits()), KernelChecks.ALL);
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        VectorWidths.run(bits, "KernelChecks", check);
    }

    /** -Dcasp.vector.bits is honoured, and a width the CPU lacks is clamped to the widest it has. */
    @ParameterizedTest(name = "{0} bits requested")
    @ValueSource(ints = {0, 128, 256, 512})
    void forcedWidthIsHonouredOrClamped(int bits) {
        int widest = VectorWidths.widestBits();
        assertEquals(bits == 0 ? 0 : Math.min(bits, widest), VectorWidths.initialisedBits(VectorWidths.freshLoader(bits)));
    }
}
