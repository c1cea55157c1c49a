package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;

/** Touches the Vector API for {@link VectorGate}; loaded only when the module is present. */
final class SimdProbe {
    private SimdProbe() {}

    /** Lanes of the preferred float species, or -1 when int and float species differ in lanes. */
    static int floatLanes() {
        int f = FloatVector.SPECIES_PREFERRED.length();
        return IntVector.SPECIES_PREFERRED.length() == f ? f : -1;
    }
}
