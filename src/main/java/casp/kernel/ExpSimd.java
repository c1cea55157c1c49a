package casp.kernel;

import static casp.kernel.Exp.E2;
import static casp.kernel.Exp.E3;
import static casp.kernel.Exp.E4;
import static casp.kernel.Exp.E5;
import static casp.kernel.Exp.E6;
import static casp.kernel.Exp.E7;
import static casp.kernel.Exp.LN2_HI;
import static casp.kernel.Exp.LN2_LO;
import static casp.kernel.Exp.LOG2E;
import static casp.kernel.Exp.MAX_X;
import static casp.kernel.Exp.MIN_X;
import static casp.kernel.Exp.ROUND;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Lane-wise {@link Exp#exp(float)} for the vector loops of the other *Simd classes; loaded only
 * when VectorSupport.enabled(). The operations are the scalar ones in the same order (fma where
 * the scalar code has Math.fma), so every lane has the scalar result's bits.
 */
final class ExpSimd {
    private ExpSimd() {}

    static final VectorSpecies<Float> S = VectorProbe.floatSpecies();
    static final int L = S.length();

    /** Lane-wise e^x, any species. Small, so C2 inlines it into the callers' loops (no vector escapes). */
    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(MIN_X).min(MAX_X);
        FloatVector t = c.fma(LOG2E, ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(x.broadcast(-LN2_HI), c);
        r = n.fma(x.broadcast(-LN2_LO), r);
        FloatVector p = x.broadcast(E7).fma(r, x.broadcast(E6));
        p = p.fma(r, x.broadcast(E5));
        p = p.fma(r, x.broadcast(E4));
        p = p.fma(r, x.broadcast(E3));
        p = p.fma(r, x.broadcast(E2));
        p = p.fma(r, x.broadcast(1f));
        p = p.fma(r, x.broadcast(1f));
        IntVector bits = t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND) - 127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** x[off + i] = e^x[off + i]: vector body, scalar tail. */
    static void exp(float[] x, int off, int n) {
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += L) exp(FloatVector.fromArray(S, x, off + i)).intoArray(x, off + i);
        for (; i < n; i++) x[off + i] = Exp.exp(x[off + i]);
    }
}
