package casp.io;

/**
 * Size arithmetic on untrusted numbers (shapes, config sizes, image sizes): a product that leaves
 * the range of a long, or of an int where an array is made from it, is a {@link BadInputException}
 * with the caller's message, never an ArithmeticException or a negative array size.
 */
public final class SizeMath {
    private SizeMath() {}

    /** a * b for non-negative a, b; the message names what overflowed. */
    public static long multiply(long a, long b, String message) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new BadInputException(message);
        }
    }

    /** The product of the factors when it is at most limit, else a BadInputException with the message. */
    public static long productAtMost(long limit, String message, long... factors) {
        long p = 1;
        for (long f : factors) {
            if (f < 0) throw new BadInputException(message);
            p = multiply(p, f, message);
            if (p > limit) throw new BadInputException(message);
        }
        return p;
    }
}
