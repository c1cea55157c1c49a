package casp.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The only place that touches the Vector API on behalf of {@link VectorSupport}; loaded only after
 * VectorSupport has checked that the module is there. The preferred shape is the same for every
 * element type, so the preferred int species has as many lanes as the float one.
 */
final class VectorProbe {
    private VectorProbe() {}

    static int preferredFloatBits() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    /** Float species of the width VectorSupport chose; only call when VectorSupport.enabled(). */
    static VectorSpecies<Float> floatSpecies() {
        return VectorSpecies.of(float.class, VectorShape.forBitSize(VectorSupport.bits()));
    }

    /** Int species of the same width (as many lanes as the float one). */
    static VectorSpecies<Integer> intSpecies() {
        return VectorSpecies.of(int.class, VectorShape.forBitSize(VectorSupport.bits()));
    }

    /** Double species of the same width. */
    static VectorSpecies<Double> doubleSpecies() {
        return VectorSpecies.of(double.class, VectorShape.forBitSize(VectorSupport.bits()));
    }
}
