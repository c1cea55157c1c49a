package casp.quant.aqlm;

import casp.kernel.RandomizedSvd;
import casp.kernel.Syrk;
import casp.quant.gptq.Gptq;
import casp.quant.gptq.QuantizedWeight;
import casp.quant.quip.Quip;
import casp.quant.quip.QuipLayer;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Each 2-bit quantizer on one random [size, size] linear with the Hessian of 2 size correlated
 * calibration tokens: GPTQ (groups of 128), QuIP# (incoherence, E8P12 search and BlockLDLQ, with
 * its scale search), and the two steps of one AQLM round (2x8 codebooks, beam 4) from a state
 * after k-means initialisation: the beam search over codes and the codebook solve. Each call starts
 * from the same codes, so calls cost the same. The class sits in AQLM's package to reach those two
 * steps of its quantizer.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx10g"})
public class QuantizerBenchmark {
    @Param({"1024", "4096"})
    int size;

    float[] w;
    double[] h;
    Aqlm.State aqlm;
    int[] aqlmCodes;
    double[] aqlmResidual, residualScratch;
    final Aqlm.Options aqlmOptions = Aqlm.Options.defaults(2);

    @Setup
    public void setup() {
        w = RandomizedSvd.gaussianMatrix(size, size, 1);
        h = hessian(size, 2 * size, 2);
        aqlm = new Aqlm.State(w, size, size, h, aqlmOptions.numCodebooks(), 1 << aqlmOptions.codebookBits());
        Aqlm.initScales(aqlm);
        Aqlm.residualKmeans(aqlm, 2, aqlmOptions.seed());
        Aqlm.updateCodebooks(aqlm, aqlmOptions.jointLimit());
        Aqlm.updateScales(aqlm);
        aqlmResidual = new double[aqlm.rows * aqlm.cp];
        Aqlm.objective(aqlm, aqlm.decode(), aqlmResidual);
        aqlmCodes = aqlm.codes.clone();
        residualScratch = new double[aqlmResidual.length];
    }

    /** H = (2/N) X^T X of tokens that share a few strong directions, as real activations do. */
    public static double[] hessian(int dim, int rows, long seed) {
        float[] x = RandomizedSvd.gaussianMatrix(rows, dim, seed);
        float[] shared = RandomizedSvd.gaussianMatrix(8, dim, seed + 1);
        for (int t = 0; t < rows; t++) {
            for (int d = 0; d < dim; d++) x[t * dim + d] += 3f * shared[(t & 7) * dim + d];
        }
        double[] h = new double[dim * dim];
        Syrk.accumulate(x, 0, dim, rows, dim, h, 0, dim);
        for (int i = 0; i < h.length; i++) h[i] *= 2.0 / rows;
        return h;
    }

    @Benchmark
    public QuantizedWeight gptq() {
        return new Gptq(Gptq.Options.defaults(2)).quantize(w, size, size, h);
    }

    @Benchmark
    public QuipLayer quip() {
        return new Quip(Quip.Options.defaults()).quantize(w, size, size, h);
    }

    @Benchmark
    public long aqlmBeamSearch() {
        System.arraycopy(aqlmCodes, 0, aqlm.codes, 0, aqlmCodes.length);
        System.arraycopy(aqlmResidual, 0, residualScratch, 0, aqlmResidual.length);
        return Aqlm.beamSearch(aqlm, residualScratch, aqlmOptions.beamWidth());
    }

    @Benchmark
    public double aqlmCodebookSolve() {
        System.arraycopy(aqlmCodes, 0, aqlm.codes, 0, aqlmCodes.length);
        return Aqlm.updateCodebooks(aqlm, aqlmOptions.jointLimit());
    }
}
