package casp.compress;

import casp.quant.gptq.GptqFormat;
import casp.quant.aqlm.Aqlm;
import casp.quant.aqlm.AqlmWeight;
import casp.quant.lowrank.LowRankLayer;
/**
 * The rules of CASP's AQLM backend (`--method casp --backend aqlm`): how a nominal width becomes an
 * AQLM codebook configuration, what it stores, and when a low-rank factor keeps per-channel GPTQ.
 *
 * <p>Widths: at --codebook-bits B a linear of w bits per weight gets M = 8 w / B codebooks of 2^B
 * codewords (B = 8: 2 bits -> 2x8, 3 bits -> 3x8; B = 2: 2 bits -> 8x2, 3 bits -> 12x2). A width is
 * available when 8 w / B is a whole number in 1..16 (the quantizer's codebook limit).
 *
 * <p>Factors: a factor [rows, rank] or [rank, cols] is small, and its codebooks are paid in full
 * whatever its size (2x8: 65536 bits, more than a rank-8 factor of a 64-wide layer holds in
 * weights). So a factor is AQLM only when its width is available and AQLM stores no more bits than
 * per-channel GPTQ at the same width (codes + fp16 scale + zero per row); otherwise it is per-channel
 * GPTQ, the same fallback the quip backend uses for a factor width QuIP# lacks. The rule depends on
 * the shape only, so the allocation knows every cost before quantizing. The other linears are always
 * AQLM.
 */
public final class CaspAqlm {
    private CaspAqlm() {}

    /** Whether w bits per weight is a whole number (1..16) of B-bit codebooks. */
    public static boolean available(int bits, int codebookBits) {
        return bits > 0 && codebookBits > 0 && bits * Aqlm.GROUP % codebookBits == 0 && bits * Aqlm.GROUP / codebookBits <= 16;
    }

    /** M = 8 w / B; throws when the width is not {@link #available}. */
    public static int codebooks(int bits, int codebookBits) {
        if (!available(bits, codebookBits))
            throw new IllegalArgumentException(bits + " bits is not a whole number of 1..16 codebooks of " + codebookBits + " bits");
        return bits * Aqlm.GROUP / codebookBits;
    }

    /** The template's quantizer settings at a width (its codebook bits kept, M = 8 w / B). */
    public static Aqlm.Options at(Aqlm.Options template, int bits) {
        return template.withCodebooks(codebooks(bits, template.codebookBits()), template.codebookBits());
    }

    /** Exact bits of an AQLM linear [rows, cols] at a width: codes, codebooks, per-row scales ({@link AqlmWeight#storageBits}). */
    public static long linearCost(int rows, int cols, int bits, int codebookBits) {
        return AqlmWeight.storageBits(rows, cols, codebooks(bits, codebookBits), codebookBits);
    }

    /** How a factor [rows, cols] at a width is stored: "aqlm" or "gptq" (see the class comment). */
    public static String factorMethod(int rows, int cols, int bits, int codebookBits) {
        if (!available(bits, codebookBits)) return "gptq";
        return linearCost(rows, cols, bits, codebookBits) <= GptqFormat.storageBits(rows, cols, bits, -1) ? "aqlm" : "gptq";
    }

    /** Exact bits of a factor [rows, cols] at a width (0: dense float32) under {@link #factorMethod}. */
    public static long factorCost(int rows, int cols, int bits, int codebookBits) {
        if (bits == 0) return 32L * rows * cols;
        return factorMethod(rows, cols, bits, codebookBits).equals("aqlm") ? linearCost(rows, cols, bits, codebookBits)
                : GptqFormat.storageBits(rows, cols, bits, -1);
    }
}
