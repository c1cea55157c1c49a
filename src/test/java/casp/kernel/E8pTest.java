package casp.kernel;

import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class E8pTest {

    /** The codewords as keys of doubled-and-shifted integer coordinates (4 c is an integer). */
    private static String key(float[] cb, int c) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < E8p.DIM; i++) sb.append(Math.round(cb[c * E8p.DIM + i] * 4)).append(',');
        return sb.toString();
    }

    @Test
    void codebookHas65536DistinctCodewordsOfTheRightForm() {
        float[] cb = E8p.codebook();
        assertEquals(E8p.CODES * E8p.DIM, cb.length);
        Set<String> seen = new HashSet<>();
        int norm12 = 0;
        for (int c = 0; c < E8p.CODES; c++) {
            assertTrue(seen.add(key(cb, c)), "codeword " + c + " repeats");
            double shift = (c & 0x8000) != 0 ? -0.25 : 0.25;
            double n2 = 0, sum = 0;
            for (int i = 0; i < E8p.DIM; i++) {
                double x = cb[c * E8p.DIM + i] - shift; // s_i a_i, a half-integer
                assertEquals(1, Math.abs(x * 2) % 2, 0, "coordinate " + i + " of codeword " + c + " is not odd/2");
                assertEquals(E8p.pattern(c & 0xff, i), Math.abs(x), 0, "pattern of codeword " + c);
                n2 += x * x;
                sum += x;
            }
            // D8-hat: even coordinate sum (a whole number that is even), squared norm <= 10 or == 12
            assertEquals(0, Math.floorMod(Math.round(sum), 2), "odd sum(s * a) in codeword " + c);
            assertEquals(sum, Math.rint(sum), 0);
            assertTrue(n2 <= 10 || n2 == 12, "squared norm " + n2);
            if (n2 == 12) norm12++;
        }
        assertEquals(29 * 256, norm12); // 29 patterns x 128 signs x 2 shifts
        assertEquals(E8p.CODES, seen.size());
    }

    @Test
    void patternTableIsTheD8HatShellPlus29OfNorm12() {
        int small = 0, twelve = 0;
        Set<String> patterns = new HashSet<>();
        for (int p = 0; p < E8p.PATTERNS; p++) {
            double n2 = 0;
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < E8p.DIM; i++) {
                float a = E8p.pattern(p, i);
                n2 += a * a;
                sb.append(a).append(',');
            }
            assertTrue(patterns.add(sb.toString()), "pattern " + p + " repeats");
            if (n2 <= 10) small++;
            else if (n2 == 12) twelve++;
        }
        assertEquals(227, small);
        assertEquals(29, twelve);
        // every |x| of a D8-hat point of squared norm <= 10 is in the table (brute force over (Z+1/2)^8)
        int[] v = new int[8];
        int found = 0;
        for (int idx = 0; idx < 1 << 24; idx++) { // coordinates in {-7,-5,...,7}/2 ... restricted to |x| <= 5/2
            int t = idx;
            boolean ok = true;
            int n2 = 0, sum = 0;
            for (int i = 0; i < 8; i++) {
                v[i] = 2 * (t & 7) - 7; // odd in [-7, 7]
                t >>= 3;
                n2 += v[i] * v[i];
                sum += v[i];
                if (Math.abs(v[i]) > 5) ok = false;
            }
            if (!ok || n2 > 40 || Math.floorMod(sum, 4) != 0) continue;
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 8; i++) sb.append(Math.abs(v[i]) * 0.5f).append(',');
            assertTrue(patterns.contains(sb.toString()), "D8-hat point's pattern missing: " + sb);
            found++;
        }
        assertEquals(227 * 128, found); // each pattern: 128 admissible sign vectors
    }

    @Test
    void encodeIsTheExactNearestCodewordAgainstBruteForce() {
        float[] cb = E8p.codebook();
        Random rnd = new Random(11);
        E8p.Scratch s = new E8p.Scratch();
        float[] y = new float[8], q = new float[8];
        int targets = 1500, sameCode = 0;
        for (int t = 0; t < targets; t++) {
            double scale = t % 3 == 0 ? 0.5 : t % 3 == 1 ? 1.0 : 2.5; // inside, at and beyond the shell
            for (int i = 0; i < 8; i++) y[i] = (float) (rnd.nextGaussian() * scale);
            if (t % 50 == 0) for (int i = 0; i < 8; i++) y[i] = Math.round(y[i] * 2) / 2f; // exact half-integers: ties
            int code = E8p.encode(y, 0, s, q, 0);
            double best = Double.POSITIVE_INFINITY;
            int bestC = -1;
            for (int c = 0; c < E8p.CODES; c++) {
                double d = 0;
                for (int i = 0; i < 8; i++) {
                    double e = y[i] - (double) cb[c * 8 + i];
                    d += e * e;
                }
                if (d < best) {
                    best = d;
                    bestC = c;
                }
            }
            double got = 0;
            for (int i = 0; i < 8; i++) {
                assertEquals(cb[code * 8 + i], q[i], 0, "returned codeword differs from the code's");
                double e = y[i] - (double) q[i];
                got += e * e;
            }
            assertEquals(best, got, 1e-5 * (1 + best), "target " + t + ": distance of the encoded codeword");
            if (code == bestC) sameCode++;
        }
        // only exact ties may pick another codeword of the same distance
        assertTrue(sameCode > targets * 9 / 10, sameCode + " of " + targets + " identical codes");
    }

    /** The vector scan (when enabled) picks exactly the scalar scan's pattern and score. */
    @Test
    void vectorAndScalarScansAgree() {
        Random rnd = new Random(5);
        E8p.Scratch a = new E8p.Scratch(), b = new E8p.Scratch();
        float[] y = new float[8];
        for (int t = 0; t < 3000; t++) {
            for (int i = 0; i < 8; i++) y[i] = (float) (rnd.nextGaussian() * (t % 2 == 0 ? 1 : 3));
            int code = E8p.encode(y, 0, a, null, 0);
            // recompute with the scalar scan for the winning shift
            float shift = (code & 0x8000) != 0 ? -0.25f : 0.25f;
            int neg = 0;
            for (int i = 0; i < 8; i++) {
                b.absZ[i] = Math.abs(y[i] - shift);
                if (y[i] - shift < 0) neg++;
            }
            int p = E8p.bestPatternScalar(b, neg % 2 == 0 ? parity(false) : parity(true));
            assertEquals(code & 0xff, p, "target " + t);
        }
    }

    private static float[] parity(boolean flipped) {
        float[] f = new float[E8p.PATTERNS];
        for (int p = 0; p < E8p.PATTERNS; p++) {
            int sum = 0;
            for (int i = 0; i < 8; i++) sum += Math.round(E8p.pattern(p, i) * 2);
            f[p] = ((sum / 2) & 1) ^ (flipped ? 1 : 0);
        }
        return f;
    }

    /** E81B: 256 distinct points of E8 (integer or half-integer coordinates, even sum), norms 0, 2 and 4. */
    @Test
    void residualCodebookIsE81b() {
        float[] c = new float[8];
        Set<String> seen = new HashSet<>();
        int[] byNorm = new int[5];
        for (int code = 0; code < 256; code++) {
            E8pResidual.E81B.decode(code, c, 0);
            StringBuilder sb = new StringBuilder();
            double n2 = 0, sum = 0;
            boolean half = Math.abs(c[0] * 2) % 2 == 1;
            for (float v : c) {
                assertEquals(half, Math.abs(v * 2) % 2 == 1, "mixed coordinates in " + code);
                n2 += v * v;
                sum += v;
                sb.append(v).append(',');
            }
            assertTrue(seen.add(sb.toString()), "E81B codeword " + code + " repeats");
            assertEquals(0, Math.floorMod(Math.round(sum), 2), "odd sum in " + code);
            byNorm[(int) Math.round(n2)]++;
        }
        assertEquals(1, byNorm[0]);
        assertEquals(240, byNorm[2]);
        assertEquals(15, byNorm[4]);
        // its nearest-codeword search is a brute force; check it returns a nearest one
        Random rnd = new Random(2);
        float[] r = new float[8], q = new float[8];
        for (int t = 0; t < 200; t++) {
            for (int i = 0; i < 8; i++) r[i] = (float) rnd.nextGaussian();
            int got = E8pResidual.E81B.encode(r, 0, null, q, 0);
            double dGot = 0, best = Double.POSITIVE_INFINITY;
            for (int i = 0; i < 8; i++) dGot += (r[i] - q[i]) * (r[i] - q[i]);
            for (int code = 0; code < 256; code++) {
                E8pResidual.E81B.decode(code, c, 0);
                double d = 0;
                for (int i = 0; i < 8; i++) d += (r[i] - c[i]) * (r[i] - c[i]);
                best = Math.min(best, d);
            }
            assertEquals(best, dGot, 1e-5, "target " + t + " code " + got);
        }
    }

    @Test
    void decodeAgreesWithCodebookAndShiftBit() {
        float[] out = new float[8];
        for (int code : new int[]{0, 1, 255, 256, 0x7fff, 0x8000, 0xffff, 0x1234}) {
            E8p.decode(code, out, 0);
            double sum = 0;
            for (float v : out) sum += v;
            double shift = (code & 0x8000) != 0 ? -0.25 : 0.25;
            assertEquals(0, Math.floorMod(Math.round(sum - 8 * shift), 2), "code " + code);
        }
    }
}
