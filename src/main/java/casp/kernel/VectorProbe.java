package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** Touches the Vector API; loaded only after VectorSupport has checked that the module is there. */
final class VectorProbe {
    private VectorProbe() {}

    static int preferredFloatBits() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    static int lanes(int bits) {
        return bits < 64 ? 1 : VectorSpecies.of(float.class, VectorShape.forBitSize(bits)).length();
    }

    /** Float species of the width VectorSupport chose; only call when VectorSupport.enabled(). */
    static VectorSpecies<Float> floatSpecies() {
        return VectorSpecies.of(float.class, VectorShape.forBitSize(VectorSupport.bits()));
    }

    /** Double species of the same width. */
    static VectorSpecies<Double> doubleSpecies() {
        return VectorSpecies.of(double.class, VectorShape.forBitSize(VectorSupport.bits()));
    }
}
