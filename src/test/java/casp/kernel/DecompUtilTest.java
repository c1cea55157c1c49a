package casp.kernel;

import org.junit.jupiter.api.Test;

/** The decompositions' row operations at the JVM's default vector width; VectorWidthTest repeats them at the other widths. */
class DecompUtilTest {
    @Test
    void rowOpsMatchPlainLoops() {
        KernelChecks.decompRowOps();
    }
}
