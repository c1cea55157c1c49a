package casp.kernel;

import org.junit.jupiter.api.Test;

class SyrkTest {
    @Test
    void hessianAccumulationMatchesNaive() {
        KernelChecks.syrk();
    }

    @Test
    void float64FoldKeepsPrecisionOverAMillionTokens() {
        KernelChecks.syrkPrecision();
    }
}
