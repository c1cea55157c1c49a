package casp.kernel;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/**
 * Decides once, without touching jdk.incubator.vector itself, whether the kernels of this part of
 * the package (decompositions, FWHT, dequantizing products) take their Vector API paths: the
 * module must be in the boot layer (--add-modules jdk.incubator.vector), the preferred float
 * species must have 4, 8 or 16 lanes, and -Dcasp.kernel.scalar=true must not be set. The vector
 * code lives in separate *Simd classes that are only loaded when {@link #VECTOR} is true, so the
 * scalar paths work without the module.
 *
 * <p>{@link #FMA}: whether the JIT turns Vector fma into a hardware FMA. Without it (old CPUs,
 * -XX:UseAVX=0) FloatVector.fma falls back to an exact software fma, ~10^4 times slower, so the
 * vector code uses mul + add instead. -Dcasp.kernel.fma=true|false overrides the check.
 * TODO(merge): fold into the shared VectorSupport start-up check of the GEMM branch.
 */
final class VectorGate {
    private VectorGate() {}

    static final boolean VECTOR = detectVector();
    static final boolean FMA = detectFma();

    private static boolean detectVector() {
        if (Boolean.getBoolean("casp.kernel.scalar")) return false;
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) return false;
        try {
            int lanes = SimdProbe.floatLanes();
            return lanes == 4 || lanes == 8 || lanes == 16;
        } catch (Throwable t) { // LinkageError or the like: no usable Vector API
            return false;
        }
    }

    private static boolean detectFma() {
        String forced = System.getProperty("casp.kernel.fma");
        if (forced != null) return Boolean.parseBoolean(forced);
        try {
            HotSpotDiagnosticMXBean bean = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            return Boolean.parseBoolean(bean.getVMOption("UseFMA").getValue());
        } catch (RuntimeException | LinkageError e) {
            return false; // not HotSpot: mul + add is always safe
        }
    }
}
