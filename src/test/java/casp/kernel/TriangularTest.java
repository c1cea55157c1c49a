package casp.kernel;

import org.junit.jupiter.api.Test;

class TriangularTest {
    @Test
    void solvesAndInversesMatchNaive() {
        KernelChecks.triangular();
    }
}
