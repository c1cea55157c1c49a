package casp.kernel;

import org.junit.jupiter.api.Test;

class CholeskyTest {
    @Test
    void factorsSpdMatrices() {
        KernelChecks.cholesky();
    }

    @Test
    void reportsFailureWithoutNaN() {
        KernelChecks.choleskyFailure();
    }

    @Test
    void inverseUpperMatchesTorchRecipe() {
        KernelChecks.choleskyInverseUpper();
    }
}
