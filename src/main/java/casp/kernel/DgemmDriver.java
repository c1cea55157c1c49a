package casp.kernel;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Blocked, packed double GEMM (the GotoBLAS/BLIS scheme) behind {@link Gemm#dgemm}.
 *
 * <p>Loops, outermost first: jc over N in blocks of NC; pc over K in blocks of KC, where op(B)'s
 * KC x NC block is packed once into slivers of NR columns (shared by all threads); ic over M in
 * blocks of MC, where each thread packs its own MC x KC block of alpha * op(A) into slivers of MR
 * rows; then the macro-kernel: for each chunk of B slivers that fits in L2 (KC x 256 doubles), each
 * A sliver (MR x KC) sweeps the chunk with the MR x NR register micro-kernel while B streams from
 * L2. Packing pads with zeros, so the micro-kernel always runs a full tile; a tile that sticks out
 * of C goes through a small scratch tile.
 *
 * <p>Threads: the packing of B, then the compute phase, are spread over the pool as work items
 * (groups of B slivers; blocks of MC rows of C, or groups of B slivers when C is short and wide)
 * taken from a shared counter, so a thread preempted on a busy machine delays only its item.
 *
 * <p>{@code diag} restricts the update to the lower part of C: element (i, j) is written only when
 * j <= i + diag (use {@link #FULL} for the whole matrix). The symmetric rank-k update and the
 * Cholesky trailing update use it; elements above that line are never read or written.
 *
 * <p>The float twin {@link SgemmDriver} is the same code apart from the element type and the cache
 * blocking (KC, MC, NC: half the float sizes, the elements being twice as wide); FloatDoubleTwinsTest
 * holds them to that.
 */
final class DgemmDriver {
    private DgemmDriver() {}

    /** diag value meaning "no triangle": every element of C is computed. */
    static final int FULL = Integer.MAX_VALUE / 4;

    static final boolean SIMD = VectorSupport.enabled();
    static final int MR = SIMD ? DgemmSimd.MR : 4;
    static final int NR = SIMD ? DgemmSimd.NR : 4;
    // Cache blocking: the same scheme as SgemmDriver, with MC halved since elements are twice as wide.
    static final int KC = Integer.getInteger("casp.dgemm.kc", 256);
    static final int MC = roundUp(Integer.getInteger("casp.dgemm.mc", 72), MR);
    static final int CHUNK = Math.max(1, Integer.getInteger("casp.dgemm.l2cols", 256) / NR);
    static final int NC = roundUp(Integer.getInteger("casp.dgemm.nc", 2048), NR);
    /** B slivers packed per work item. */
    static final int PACK_SLIVERS = 8;
    /** Below this many multiply-adds the call runs on the calling thread alone. */
    static final long PARALLEL_MIN_FMA = 1L << 22;

    private static final ThreadLocal<double[]> B_BUF = new ThreadLocal<>();
    private static final ThreadLocal<double[]> A_BUF = new ThreadLocal<>();

    static int roundUp(int x, int q) {
        return (x + q - 1) / q * q;
    }

    static double[] buffer(ThreadLocal<double[]> tl, int size) {
        double[] buf = tl.get();
        if (buf == null || buf.length < size) {
            buf = new double[size];
            tl.set(buf);
        }
        return buf;
    }

    /** C = alpha op(A) op(B) + beta C on the elements (i, j) with j <= i + diag. */
    static void gemm(boolean transA, boolean transB, int m, int n, int k,
                     double alpha, double[] a, int offA, int lda,
                     double[] b, int offB, int ldb,
                     double beta, double[] c, int offC, int ldc, int diag) {
        if (m <= 0 || n <= 0) return;
        if (k <= 0 || alpha == 0) {
            scale(m, n, beta, c, offC, ldc, diag);
            return;
        }
        long fma = (long) m * n * k;
        int threads = fma >= PARALLEL_MIN_FMA ? Parallel.threads() : 1;
        int ncMax = Math.min(roundUp(n, NR), NC);
        double[] bp = buffer(B_BUF, Math.min(KC, k) * ncMax);
        for (int jc = 0; jc < n; jc += NC) {
            final int nc = Math.min(NC, n - jc);
            final int slivers = (nc + NR - 1) / NR;
            final int jc0 = jc;
            for (int pc = 0; pc < k; pc += KC) {
                final int kc = Math.min(KC, k - pc);
                final int pc0 = pc;
                final double betaPc = pc == 0 ? beta : 1.0;
                // Work is handed out in items from a shared counter rather than in fixed halves, so a
                // thread that the OS preempts (the machine is shared) delays one item, not half the job.
                final int packItems = (slivers + PACK_SLIVERS - 1) / PACK_SLIVERS;
                AtomicInteger packNext = new AtomicInteger();
                Parallel.forRange(Math.min(threads, packItems), t -> {
                    for (int item; (item = packNext.getAndIncrement()) < packItems; ) {
                        int sEnd = Math.min(slivers, (item + 1) * PACK_SLIVERS);
                        for (int s = item * PACK_SLIVERS; s < sEnd; s++) {
                            packB(transB, b, offB, ldb, pc0, kc, jc0 + s * NR, Math.min(NR, nc - s * NR), bp, s * kc * NR);
                        }
                    }
                });
                // Items: blocks of MC rows (the usual case; for the lower triangle the last, longest rows
                // go first so the tail stays short), or groups of B slivers when C is short and wide.
                boolean splitRows = m >= nc || diag != FULL;
                final int rowItems = (m + MC - 1) / MC, colItems = (slivers + CHUNK - 1) / CHUNK;
                final int items = splitRows ? rowItems : colItems;
                AtomicInteger next = new AtomicInteger();
                Parallel.forRange(Math.min(threads, items), t -> {
                    double[] ap = buffer(A_BUF, MC * kc);
                    double[] scratch = new double[MR * NR];
                    for (int item; (item = next.getAndIncrement()) < items; ) {
                        int i0 = 0, i1 = m, s0 = 0, s1 = slivers;
                        if (splitRows) {
                            int block = diag != FULL ? rowItems - 1 - item : item;
                            i0 = block * MC;
                            i1 = Math.min(m, i0 + MC);
                        } else {
                            s0 = item * CHUNK;
                            s1 = Math.min(slivers, s0 + CHUNK);
                        }
                        for (int ic = i0; ic < i1; ic += MC) {
                            int mc = Math.min(MC, i1 - ic);
                            // Rows whose every column from jc0 + s0*NR on is above the triangle: nothing to do.
                            if (diag != FULL && (long) jc0 + (long) s0 * NR > (long) ic + mc - 1 + diag) continue;
                            packA(transA, a, offA, lda, ic, mc, pc0, kc, alpha, ap);
                            macro(mc, nc, kc, ap, bp, s0, s1, c, offC, ldc, ic, jc0, betaPc, diag, scratch);
                        }
                    }
                });
            }
        }
    }

    /** Runs the micro-kernel over the packed A block (mc x kc) and B slivers [s0, s1). */
    private static void macro(int mc, int nc, int kc, double[] ap, double[] bp, int s0, int s1,
                              double[] c, int offC, int ldc, int ic, int jc, double beta, int diag, double[] scratch) {
        // Chunks of CHUNK slivers of B (KC x CHUNK*NR, sized for L2) are swept by every A sliver
        // (MR x KC, small enough for L1, which serves its broadcasts); B streams from L2.
        for (int sc = s0; sc < s1; sc += CHUNK) {
            int sEnd = Math.min(s1, sc + CHUNK);
            for (int ir = 0; ir < mc; ir += MR) {
                int mr = Math.min(MR, mc - ir);
                int ao = ir * kc;
                for (int s = sc; s < sEnd; s++) {
                    tile(kc, ap, ao, bp, s * kc * NR, mr, Math.min(NR, nc - s * NR),
                            ic + ir, jc + s * NR, c, offC, ldc, beta, diag, scratch);
                }
            }
        }
    }

    /** One MR x NR tile of C at (gi, gj): straight into C when whole, else through the scratch tile. */
    private static void tile(int kc, double[] ap, int ao, double[] bp, int bo, int mr, int nr, int gi, int gj,
                             double[] c, int offC, int ldc, double beta, int diag, double[] scratch) {
        boolean straddles = false;
        if (diag != FULL) {
            if ((long) gj > (long) gi + mr - 1 + diag) return;      // tile entirely above the line
            straddles = (long) gj + nr - 1 > (long) gi + diag;     // part of it above the line
        }
        int co = offC + gi * ldc + gj;
        if (mr == MR && nr == NR && !straddles) {
            micro(kc, ap, ao, bp, bo, c, co, ldc, beta);
            return;
        }
        micro(kc, ap, ao, bp, bo, scratch, 0, NR, 0.0);
        for (int i = 0; i < mr; i++) {
            int jEnd = nr;
            if (diag != FULL) jEnd = (int) Math.max(0, Math.min(nr, (long) gi + i + diag - gj + 1));
            int ci = co + i * ldc, si = i * NR;
            if (beta == 0) {
                for (int j = 0; j < jEnd; j++) c[ci + j] = scratch[si + j];
            } else {
                for (int j = 0; j < jEnd; j++) c[ci + j] = beta * c[ci + j] + scratch[si + j];
            }
        }
    }

    private static void micro(int kc, double[] ap, int ao, double[] bp, int bo, double[] c, int co, int ldc, double beta) {
        if (SIMD) {
            DgemmSimd.kernel(kc, ap, ao, bp, bo, c, co, ldc, beta);
        } else {
            scalarKernel(kc, ap, ao, bp, bo, c, co, ldc, beta);
        }
    }

    /** Scalar 4 x 4 register tile, the fallback when the Vector API is unusable. */
    private static void scalarKernel(int kc, double[] ap, int ao, double[] bp, int bo, double[] c, int co, int ldc, double beta) {
        double c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        double c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++) {
            double b0 = bp[bo], b1 = bp[bo + 1], b2 = bp[bo + 2], b3 = bp[bo + 3];
            double a0 = ap[ao], a1 = ap[ao + 1], a2 = ap[ao + 2], a3 = ap[ao + 3];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            ao += 4;
            bo += 4;
        }
        double[] t = {c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33};
        for (int i = 0; i < 4; i++) {
            int ci = co + i * ldc;
            for (int j = 0; j < 4; j++) {
                c[ci + j] = beta == 0 ? t[i * 4 + j] : beta * c[ci + j] + t[i * 4 + j];
            }
        }
    }

    /**
     * Packs alpha * op(A)[ic .. ic+mc, pc .. pc+kc] into slivers of MR rows: sliver r holds, for
     * each p, the MR values of rows r*MR .. r*MR+MR-1 (zero past mc).
     */
    private static void packA(boolean transA, double[] a, int offA, int lda, int ic, int mc, int pc, int kc,
                              double alpha, double[] ap) {
        for (int ir = 0; ir < mc; ir += MR) {
            int mr = Math.min(MR, mc - ir);
            int base = ir * kc;
            if (!transA) {
                // op(A)(i, p) = a[offA + i * lda + p]: read each row sequentially, scatter with stride MR.
                for (int r = 0; r < mr; r++) {
                    int src = offA + (ic + ir + r) * lda + pc;
                    int dst = base + r;
                    if (alpha == 1) {
                        for (int p = 0; p < kc; p++, dst += MR) ap[dst] = a[src + p];
                    } else {
                        for (int p = 0; p < kc; p++, dst += MR) ap[dst] = alpha * a[src + p];
                    }
                }
            } else {
                // op(A)(i, p) = a[offA + p * lda + i]: the MR values of one p are contiguous.
                for (int p = 0; p < kc; p++) {
                    int src = offA + (pc + p) * lda + ic + ir;
                    int dst = base + p * MR;
                    for (int r = 0; r < mr; r++) ap[dst + r] = alpha * a[src + r];
                }
            }
            if (mr < MR) {
                for (int p = 0; p < kc; p++) {
                    for (int r = mr; r < MR; r++) ap[base + p * MR + r] = 0.0;
                }
            }
        }
    }

    /** Packs op(B)[pc .. pc+kc, j0 .. j0+nr] into one sliver: for each p, NR values (zero past nr). */
    private static void packB(boolean transB, double[] b, int offB, int ldb, int pc, int kc, int j0, int nr,
                              double[] bp, int dst) {
        if (!transB) {
            // op(B)(p, j) = b[offB + p * ldb + j]: contiguous runs of nr values.
            for (int p = 0; p < kc; p++) {
                int d = dst + p * NR;
                System.arraycopy(b, offB + (pc + p) * ldb + j0, bp, d, nr);
                for (int j = nr; j < NR; j++) bp[d + j] = 0.0;
            }
        } else {
            // op(B)(p, j) = b[offB + j * ldb + p]: for each p, one value from each of the nr rows
            // (nr read streams that stay in L1, one sequential write stream)
            int src0 = offB + j0 * ldb + pc;
            for (int p = 0; p < kc; p++) {
                int d = dst + p * NR, src = src0 + p;
                for (int j = 0; j < nr; j++, src += ldb) bp[d + j] = b[src];
            }
            if (nr < NR) {
                for (int p = 0; p < kc; p++) {
                    for (int j = nr; j < NR; j++) bp[dst + p * NR + j] = 0.0;
                }
            }
        }
    }

    /** C = beta C on the elements with j <= i + diag (beta == 0 writes zeros, ignoring NaN). */
    static void scale(int m, int n, double beta, double[] c, int offC, int ldc, int diag) {
        if (beta == 1) return;
        for (int i = 0; i < m; i++) {
            int jEnd = diag == FULL ? n : (int) Math.max(0, Math.min(n, (long) i + diag + 1));
            int ci = offC + i * ldc;
            if (beta == 0) {
                java.util.Arrays.fill(c, ci, ci + jEnd, 0.0);
            } else {
                for (int j = 0; j < jEnd; j++) c[ci + j] *= beta;
            }
        }
    }
}
