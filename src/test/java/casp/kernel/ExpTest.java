package casp.kernel;

import java.lang.reflect.InvocationTargetException;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every check of {@link ExpChecks} at each vector width (scalar, 128, 256, 512 bits), through
 * {@link VectorWidths}, and the cold-versus-compiled check in a loader of its own per width.
 */
class ExpTest {
    static Stream<Arguments> cases() {
        return VectorWidths.cases(ExpChecks.ALL);
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        VectorWidths.run(bits, "ExpChecks", check);
    }

    static IntStream widths() {
        return VectorWidths.distinctWidths();
    }

    /** A fresh loader, so the first calls really run interpreted before C2 compiles the loops. */
    @ParameterizedTest(name = "at {0} bits")
    @MethodSource("widths")
    void sameBitsInterpretedAndCompiled(int bits) throws Throwable {
        ClassLoader cold = VectorWidths.freshLoader(bits);
        try {
            Class.forName("casp.kernel.ExpChecks", true, cold).getMethod("coldEqualsCompiled").invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
