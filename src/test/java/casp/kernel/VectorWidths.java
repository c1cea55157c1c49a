package casp.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/**
 * Test harness that reruns kernel checks at other vector widths in one JVM.
 *
 * <p>The width is a static final decided when {@link VectorSupport} initialises, so each width
 * gets its own class loader that defines the casp.kernel classes afresh (kernels and the check
 * classes that call them) while -Dcasp.vector.bits is set. A check class is a casp.kernel test
 * class with public static no-argument methods that throw AssertionError; {@link #run} calls one
 * by name through the loader of the requested width.
 *
 * <p>Widths the CPU lacks are clamped to the widest it has; requests that end at the same
 * effective width share one loader, and the JVM's own width uses the ordinary classes, so no
 * configuration is set up twice. Loaders are shared by all test classes (each costs a JIT
 * warm-up and a thread pool).
 */
final class VectorWidths {
    private VectorWidths() {}

    /** The widths the tests ask for: scalar, 128, 256 and 512 bits. */
    static final int[] REQUESTED = {0, 128, 256, 512};

    /** Loaders by effective width. */
    private static final Map<Integer, ClassLoader> LOADERS = new ConcurrentHashMap<>();
    private static volatile int widest = -1;

    /** Width the kernels of this JVM's ordinary classes run at. */
    static int defaultBits() {
        return VectorSupport.bits();
    }

    /** The widest width a request can get here: 0 when the Vector API is unusable. */
    static int widestBits() {
        if (widest < 0) widest = initialisedBits(freshLoader(512));
        return widest;
    }

    /** The width a request for {@code bits} gets on this machine. */
    static int effectiveBits(int bits) {
        return bits == 0 ? 0 : Math.min(bits, widestBits());
    }

    /** The distinct effective widths of {@link #REQUESTED}, ascending. */
    static IntStream distinctWidths() {
        return IntStream.of(REQUESTED).map(VectorWidths::effectiveBits).distinct().sorted();
    }

    /** (bits, check) for each distinct width and each named check, for a parameterized test. */
    static Stream<Arguments> cases(String[] checks) {
        return cases(distinctWidths(), checks);
    }

    /** (bits, check) for the given widths and each named check. */
    static Stream<Arguments> cases(IntStream widths, String[] checks) {
        return widths.boxed().flatMap(bits -> Stream.of(checks).map(c -> Arguments.of(bits, c)));
    }

    /**
     * The class loader whose casp.kernel classes run at {@code bits} (after clamping): the
     * ordinary one for this JVM's own width, otherwise an isolated one.
     */
    static ClassLoader loader(int bits) {
        int eff = effectiveBits(bits);
        if (eff == defaultBits()) return VectorWidths.class.getClassLoader();
        return LOADERS.computeIfAbsent(eff, VectorWidths::freshLoader);
    }

    /**
     * Runs {@code checkClass.check()} (a simple name in casp.kernel) with the kernels at
     * {@code bits}, after checking that they really run at the expected width.
     */
    static void run(int bits, String checkClass, String check) throws Throwable {
        ClassLoader loader = loader(bits);
        assertEquals(effectiveBits(bits), initialisedBits(loader), "effective vector width");
        Class<?> checks = Class.forName("casp.kernel." + checkClass, true, loader);
        try {
            checks.getMethod(check).invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    private static volatile ClassLoader converting;

    /**
     * A loader at the widest width whose row-lane kernels convert codes to float instead of reading
     * them as denormals (-Dcasp.kernel.denormals=false while RowLaneSimd initialises), so that the
     * variant other CPUs take is checked on this one too.
     */
    static synchronized ClassLoader convertingLoader() {
        if (converting == null) {
            ClassLoader loader = freshLoader(widestBits());
            synchronized (VectorWidths.class) {
                String saved = System.getProperty("casp.kernel.denormals");
                System.setProperty("casp.kernel.denormals", "false");
                try {
                    Class.forName("casp.kernel.RowLaneSimd", true, loader);
                } catch (ClassNotFoundException e) {
                    throw new IllegalStateException(e);
                } finally {
                    if (saved == null) System.clearProperty("casp.kernel.denormals");
                    else System.setProperty("casp.kernel.denormals", saved);
                }
            }
            converting = loader;
        }
        return converting;
    }

    /** Runs {@code checkClass.check()} in {@link #convertingLoader}, after checking that its kernels do convert. */
    static void runConverting(String checkClass, String check) throws Throwable {
        ClassLoader loader = convertingLoader();
        Class<?> rowLanes = Class.forName("casp.kernel.RowLaneSimd", true, loader);
        java.lang.reflect.Field fast = rowLanes.getDeclaredField("DENORMALS_FAST");
        fast.setAccessible(true); // another loader's class: another runtime package
        assertEquals(false, fast.getBoolean(null), "denormal reads switched off");
        Class<?> checks = Class.forName("casp.kernel." + checkClass, true, loader);
        try {
            checks.getMethod(check).invoke(null);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** VectorSupport.bits() as seen by the classes of the loader. */
    static int initialisedBits(ClassLoader loader) {
        try {
            return (int) Class.forName("casp.kernel.VectorSupport", true, loader).getMethod("bits").invoke(null);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A new loader that defines every casp.kernel class but this one itself, with VectorSupport initialised at bits. */
    static ClassLoader freshLoader(int bits) {
        ClassLoader parent = VectorWidths.class.getClassLoader();
        ClassLoader loader = new ClassLoader("casp-kernel-" + bits + "bit", parent) {
            @Override
            protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
                if (!name.startsWith("casp.kernel.") || name.startsWith(VectorWidths.class.getName())) {
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
        synchronized (VectorWidths.class) {
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
        }
        return loader;
    }
}
