package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Vector API scans of {@link Finite}; loaded only when VectorSupport.enabled(). */
final class FiniteSimd {
    private FiniteSimd() {}

    static final VectorSpecies<Float> F = VectorProbe.floatSpecies();
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(VectorSupport.bits()));

    static boolean anyNonFinite(float[] a, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += F.length())
            acc = acc.add(FloatVector.fromArray(F, a, i).mul(0f)); // NaN in a lane once any x there is NaN or +-Inf
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += a[i] * 0f;
        return s != 0;
    }

    static boolean anyExponentAllOnes(short[] h, int n, short mask) {
        ShortVector least = ShortVector.broadcast(S, mask);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            // (x & mask) ^ mask is 0 exactly where the exponent is all ones; min over lanes keeps a 0 once seen.
            ShortVector m = ShortVector.fromArray(S, h, i).and(mask).lanewise(VectorOperators.XOR, mask);
            least = least.min(m);
        }
        if (least.reduceLanes(VectorOperators.MIN) == 0) return true;
        for (; i < n; i++) if ((h[i] & mask) == mask) return true;
        return false;
    }
}
