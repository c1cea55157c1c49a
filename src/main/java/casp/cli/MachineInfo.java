package casp.cli;

import casp.kernel.VectorSupport;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The machine facts a benchmark result needs beside it: the CPU model (from /proc/cpuinfo) and the
 * vector width the kernels and C2 use in this JVM. Its main prints them in one line; the regression
 * gate runs it with the benchmark forks' JVM flags, so the line describes those JVMs.
 */
public final class MachineInfo {
    private MachineInfo() {}

    public static void main(String[] args) {
        System.out.println(describe());
    }

    /** "kernels: Vector API, 512-bit (16 float lanes); C2 MaxVectorSize=64 UseAVX=3; cpu: ..." */
    static String describe() {
        return "kernels: " + VectorSupport.describe() + "; C2 MaxVectorSize=" + vmOption("MaxVectorSize")
                + " UseAVX=" + vmOption("UseAVX") + "; cpu: " + cpuModel() + "; cores: " + Runtime.getRuntime().availableProcessors()
                + "; java " + System.getProperty("java.version");
    }

    /** The CPU's model name, or the OS architecture where /proc/cpuinfo does not say. */
    static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name") && line.contains(":")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux: fall back to the architecture
        }
        return System.getProperty("os.arch");
    }

    /** The CPU model in lower case, runs of other characters as one '-': "intel-xeon-processor". */
    static String cpuSlug() {
        String s = cpuModel().toLowerCase(Locale.ROOT).replaceAll("\\((r|tm)\\)", "").replaceAll("[^a-z0-9]+", "-");
        s = s.replaceAll("^-+|-+$", "");
        return s.isEmpty() ? "unknown-cpu" : s;
    }

    private static String vmOption(String name) {
        try {
            return ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class).getVMOption(name).getValue();
        } catch (RuntimeException | LinkageError e) {
            return "?";
        }
    }
}
