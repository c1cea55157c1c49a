package casp.kernel;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Decides once, at class initialisation, whether the kernels use the Vector API and at which
 * width: the one start-up vector check of the whole package. Every SIMD kernel class reads
 * {@link #bits()} (or {@link #enabled()}) in its own static initialiser, so the choice costs
 * nothing in the hot loops. The vector code lives in separate *Simd classes that are loaded only
 * when {@link #enabled()} is true, so the scalar paths work without the module.
 *
 * <p>The Vector API is used when all of these hold:
 * <ul>
 *   <li>the module {@code jdk.incubator.vector} is in the boot layer (the JVM was started with
 *       {@code --add-modules jdk.incubator.vector});</li>
 *   <li>the JIT is C2 (not {@code -Xint}, not {@code -XX:TieredStopAtLevel} below 4): without
 *       C2 the vector intrinsics are Java fallbacks, orders of magnitude slower than scalar;</li>
 *   <li>the CPU has fused multiply-add. We ask HotSpot's own CPU detection (the VM option
 *       {@code UseFMA}, which HotSpot switches on only when the CPU reports FMA); where that
 *       option cannot be read we parse the flags of /proc/cpuinfo ({@code fma} on x86,
 *       {@code asimd} on AArch64, where NEON always has FMA). If neither source answers we
 *       assume no FMA: {@code FloatVector.fma} without hardware FMA is ~10^4 times slower;</li>
 *   <li>the preferred species is 128, 256 or 512 bits wide (4, 8 or 16 float lanes): the kernels
 *       are written for those lane counts.</li>
 * </ul>
 * Otherwise the kernels take their scalar paths and one warning line goes to stderr (unless
 * {@code -Dcasp.quiet=true}).
 *
 * <p>The system property {@code casp.vector.bits} (0, 128, 256 or 512) forces a width: 0 selects
 * the scalar paths, the others a species no wider than the preferred one (a request wider than the
 * hardware's is clamped, since an unsupported shape runs in slow Java fallback code). Tests use it
 * to cover every width on one machine. {@code -Dcasp.kernel.scalar=true} is an alias of
 * {@code -Dcasp.vector.bits=0}, kept for scripts written against the decomposition kernels' former
 * switch.
 */
public final class VectorSupport {
    private VectorSupport() {}

    /** Name of the system property that forces a vector width in bits (0 = scalar). */
    public static final String BITS_PROPERTY = "casp.vector.bits";
    /** Alias: {@code -Dcasp.kernel.scalar=true} means {@code -Dcasp.vector.bits=0}. */
    static final String SCALAR_PROPERTY = "casp.kernel.scalar";

    /**
     * Whether the CPU has hardware FMA (see the class comment). Always true when {@link #enabled()};
     * kernels that keep a mul + add variant read it so that variant is never taken by mistake.
     */
    static final boolean FMA = hasFma();

    private static final int BITS;
    private static final String REASON;
    /** The property that asked for scalar code, or null. */
    private static final String FORCED_BY;

    static {
        String reason = null, scalarRequest = null;
        int preferred = 0;
        boolean moduleThere = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
        if (!moduleThere) {
            reason = "the Vector API is not enabled (start java with --add-modules jdk.incubator.vector)";
        } else if (!c2Available()) {
            reason = "the C2 JIT is off (-Xint or TieredStopAtLevel < 4), so vector intrinsics would be slow";
        } else if (!FMA) {
            reason = "the CPU has no fused multiply-add (or it could not be detected)";
        } else {
            try {
                preferred = VectorProbe.preferredFloatBits();
                if (preferred != 128 && preferred != 256 && preferred != 512) {
                    reason = "the preferred vector species is " + preferred + " bits wide (128, 256 or 512 needed)";
                    preferred = 0;
                }
            } catch (Throwable t) { // LinkageError, module not readable, etc.
                reason = "the Vector API failed to initialise (" + t + ")";
                preferred = 0;
            }
        }
        int bits = preferred;
        String forced = System.getProperty(BITS_PROPERTY);
        String forcedBy = "-D" + BITS_PROPERTY + "=0";
        if (Boolean.getBoolean(SCALAR_PROPERTY)) {
            forced = "0";
            forcedBy = "-D" + SCALAR_PROPERTY + "=true";
        }
        if (forced != null && !forced.isBlank()) {
            int want;
            try {
                want = Integer.parseInt(forced.trim());
            } catch (NumberFormatException e) {
                want = -1;
            }
            if (want != 0 && want != 128 && want != 256 && want != 512) {
                // A JVM property, not a command-line flag: warn and keep the automatic choice.
                System.err.println("casp: warning: ignoring -D" + BITS_PROPERTY + "=" + forced
                        + " (must be 0, 128, 256 or 512)");
            } else if (want == 0) {
                bits = 0;
                reason = null; // scalar on request: nothing to warn about
                scalarRequest = forcedBy;
            } else {
                bits = Math.min(want, preferred);
            }
        }
        BITS = bits;
        REASON = reason;
        FORCED_BY = scalarRequest;
        if (bits == 0 && reason != null && !Boolean.getBoolean("casp.quiet")) {
            System.err.println("casp: warning: using scalar kernels (slow) because " + reason);
        }
    }

    /** Vector width the kernels use, in bits: 512, 256 or 128; 0 when they run scalar code. */
    public static int bits() {
        return BITS;
    }

    /** True when the kernels use the Vector API. */
    public static boolean enabled() {
        return BITS > 0;
    }

    /** Number of float lanes per vector (1 when scalar). */
    public static int floatLanes() {
        return BITS == 0 ? 1 : BITS / 32;
    }

    /** One line describing the choice, for logs and benchmark output. */
    public static String describe() {
        if (BITS > 0) return "Vector API, " + BITS + "-bit (" + floatLanes() + " float lanes)";
        return "scalar (" + (REASON == null ? "forced by " + FORCED_BY : REASON) + ")";
    }

    private static boolean c2Available() {
        String info = System.getProperty("java.vm.info", "");
        if (info.contains("interpreted mode")) return false;
        String level = vmOption("TieredStopAtLevel");
        if (level != null) {
            try {
                if (Integer.parseInt(level) < 4 && "true".equals(vmOption("TieredCompilation"))) return false;
            } catch (NumberFormatException ignored) {
                // unknown format: assume C2
            }
        }
        return true;
    }

    private static boolean hasFma() {
        String useFma = vmOption("UseFMA");
        if (useFma != null) return Boolean.parseBoolean(useFma);
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            for (String line : lines) {
                String l = line.toLowerCase(Locale.ROOT);
                if (l.startsWith("flags") || l.startsWith("features")) {
                    for (String f : l.substring(l.indexOf(':') + 1).trim().split("\\s+")) {
                        if (f.equals("fma") || f.equals("asimd")) return true;
                    }
                    return false;
                }
            }
        } catch (IOException | RuntimeException ignored) {
            // no /proc/cpuinfo: fall through
        }
        return false;
    }

    /** A HotSpot VM option's value, or null when it cannot be read (other VM, no jdk.management). */
    private static String vmOption(String name) {
        try {
            return ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class)
                    .getVMOption(name).getValue();
        } catch (Throwable t) {
            return null;
        }
    }
}
