package casp.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Runs {@link VisionChecks} at each vector width (scalar, 128, 256, 512 bits). The width is
 * fixed when VectorSupport initialises, so each width gets a class loader that defines the
 * casp.kernel classes afresh while -Dcasp.vector.bits is set (as VectorWidthTest does for the
 * GEMM kernels). Widths the CPU lacks are clamped to the preferred one.
 */
class VisionOpsTest {
    private static final Map<Integer, ClassLoader> LOADERS = new ConcurrentHashMap<>();

    static Stream<Arguments> cases() {
        return Stream.of(0, 128, 256, 512).flatMap(bits -> Stream.of(VisionChecks.ALL).map(c -> Arguments.of(bits, c)));
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        ClassLoader loader = LOADERS.computeIfAbsent(bits, VisionOpsTest::isolatedLoader);
        Class<?> checks = Class.forName("casp.kernel.VisionChecks", true, loader);
        int effective = (int) checks.getMethod("bits").invoke(null);
        int preferred = VectorSupport.enabled() ? VectorProbe.preferredFloatBits() : 0;
        assertEquals(bits == 0 ? 0 : Math.min(bits, preferred), effective, "effective vector width");
        try {
            checks.getMethod(check).invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    private static ClassLoader isolatedLoader(int bits) {
        ClassLoader parent = VisionOpsTest.class.getClassLoader();
        ClassLoader loader = new ClassLoader("casp-vision-kernels-" + bits + "bit", parent) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (!name.startsWith("casp.kernel.") || name.equals(VisionOpsTest.class.getName()))
                    return super.loadClass(name, resolve);
                synchronized (getClassLoadingLock(name)) {
                    Class<?> c = findLoadedClass(name);
                    if (c == null) {
                        try (InputStream in = parent.getResourceAsStream(name.replace('.', '/') + ".class")) {
                            if (in == null) throw new ClassNotFoundException(name);
                            byte[] bytes = in.readAllBytes();
                            c = defineClass(name, bytes, 0, bytes.length);
                        } catch (IOException e) {
                            throw new ClassNotFoundException(name, e);
                        }
                    }
                    if (resolve) resolveClass(c);
                    return c;
                }
            }
        };
        String saved = System.getProperty(VectorSupport.BITS_PROPERTY);
        System.setProperty(VectorSupport.BITS_PROPERTY, Integer.toString(bits));
        try {
            Class.forName("casp.kernel.VectorSupport", true, loader);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
        } finally {
            if (saved == null) System.clearProperty(VectorSupport.BITS_PROPERTY);
            else System.setProperty(VectorSupport.BITS_PROPERTY, saved);
        }
        return loader;
    }
}
