package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs every check of {@link KernelChecks} at each vector width (scalar, 128, 256, 512 bits) in one
 * JVM. The width is a static final decided when VectorSupport initialises, so each width gets its
 * own class loader that defines the casp.kernel classes afresh while -Dcasp.vector.bits is set. A
 * width the CPU lacks is clamped to the preferred one (the test checks that it was).
 */
class VectorWidthTest {
    private static final Map<Integer, ClassLoader> LOADERS = new ConcurrentHashMap<>();

    static Stream<Arguments> cases() {
        return Stream.of(0, 128, 256, 512).flatMap(bits ->
                Stream.of(KernelChecks.ALL).map(check -> Arguments.of(bits, check)));
    }

    @ParameterizedTest(name = "{1} at {0} bits")
    @MethodSource("cases")
    void checkAtWidth(int bits, String check) throws Throwable {
        ClassLoader loader = LOADERS.computeIfAbsent(bits, VectorWidthTest::isolatedLoader);
        Class<?> checks = Class.forName("casp.kernel.KernelChecks", true, loader);
        int effective = (int) checks.getMethod("bits").invoke(null);
        int preferred = preferredBits();
        assertEquals(bits == 0 ? 0 : Math.min(bits, preferred), effective, "effective vector width");
        Method m = checks.getMethod(check);
        try {
            m.invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** Preferred width of this JVM (0 when the Vector API is off), from the default loader. */
    private static int preferredBits() {
        String saved = System.clearProperty(VectorSupport.BITS_PROPERTY);
        try {
            return VectorSupport.bits() == 0 ? 0 : VectorProbe.preferredFloatBits();
        } finally {
            if (saved != null) System.setProperty(VectorSupport.BITS_PROPERTY, saved);
        }
    }

    static ClassLoader isolatedLoader(int bits) { // also used by QuantOpsWidthTest
        ClassLoader parent = VectorWidthTest.class.getClassLoader();
        ClassLoader loader = new ClassLoader("casp-kernel-" + bits + "bit", parent) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (!name.startsWith("casp.kernel.") || name.equals(VectorWidthTest.class.getName())) {
                    return super.loadClass(name, resolve);
                }
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
        // VectorSupport reads the property in its static initialiser: set it only around that.
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
