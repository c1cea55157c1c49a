package casp.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.reflect.InvocationTargetException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Every check of {@link E8pChecks} (E8P12 encode, decode-multiply) at each vector width (scalar, 128, 256, 512 bits), as {@link VectorWidthTest}. */
class E8pWidthTest {
    private static final Map<Integer, ClassLoader> LOADERS = new ConcurrentHashMap<>();

    static Stream<Arguments> cases() {
        return Stream.of(0, 128, 256, 512).flatMap(bits -> Stream.of(E8pChecks.ALL).map(c -> Arguments.of(bits, c)));
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        ClassLoader loader = LOADERS.computeIfAbsent(bits, VectorWidthTest::isolatedLoader);
        Class<?> support = Class.forName("casp.kernel.VectorSupport", true, loader);
        int effective = (int) support.getMethod("bits").invoke(null);
        if (bits == 0) assertEquals(0, effective);
        else assertEquals(true, effective <= bits, "effective width " + effective + " > requested " + bits);
        Class<?> checks = Class.forName("casp.kernel.E8pChecks", true, loader);
        try {
            checks.getMethod(check).invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
