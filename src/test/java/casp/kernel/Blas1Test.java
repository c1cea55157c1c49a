package casp.kernel;

import org.junit.jupiter.api.Test;

/** Blas1's reductions at the JVM's default vector width; VectorWidthTest repeats them at the other widths. */
class Blas1Test {
    @Test
    void sumMatchesFloat64AndRepeats() {
        KernelChecks.blas1Sum();
    }
}
