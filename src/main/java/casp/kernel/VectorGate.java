package casp.kernel;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/**
 * Whether the JIT turns Vector fma into a hardware FMA. Without it (old CPUs, -XX:UseAVX=0)
 * FloatVector.fma falls back to an exact software fma, ~10^4 times slower, so the kernels of
 * this package use mul + add instead. -Dcasp.kernel.fma=true|false overrides the check.
 * TODO: fold into the shared VectorSupport start-up check when it lands.
 */
final class VectorGate {
    private VectorGate() {}

    static final boolean FMA = detectFma();

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
