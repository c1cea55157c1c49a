package casp.report;

import casp.compress.SequentialCompressor.BlockResult;
import casp.compress.SequentialCompressor.LinearResult;
import casp.eval.AttentionSparsity;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * PNG charts of the analyses, drawn with JFreeChart in headless mode: attention sparsity and
 * MSE(S - S') per layer ({@code casp sparsity}) and the per-layer bit allocation
 * ({@code casp compress --method casp}). Files are written under a temporary name and renamed.
 */
public final class Charts {
    private Charts() {}

    static {
        // No display needed (servers, CI): AWT renders into an image.
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    /**
     * Two stacked panels over the decoder layers: sparsity(tau) per visual-share group (and all
     * inputs), and MSE(S - S') per group and rank ratio on a log axis.
     */
    public static void sparsity(AttentionSparsity.Result r, String title, Path png) throws IOException {
        XYSeriesCollection sp = new XYSeriesCollection(), mse = new XYSeriesCollection();
        int nonEmpty = 0;
        for (int b = 0; b < r.inputsPerBin.length; b++) if (r.inputsPerBin[b] > 0) nonEmpty++;
        for (int b = -1; b < r.inputsPerBin.length; b++) {
            if (b >= 0 && (r.inputsPerBin[b] == 0 || nonEmpty < 2)) continue;
            String group = b < 0 ? "all inputs" : String.format(Locale.ROOT, "visual share %.2f (%d)", r.meanShare[b], r.inputsPerBin[b]);
            XYSeries s = new XYSeries(group);
            for (int l = 0; l < r.layers; l++) s.add(l, r.cell(b, l, -1).sparsity());
            sp.addSeries(s);
            for (int k = 0; k < r.options.ratios().length; k++) {
                XYSeries m = new XYSeries(group + String.format(Locale.ROOT, ", rho %.2f", r.options.ratios()[k]));
                for (int l = 0; l < r.layers; l++) {
                    double v = r.cell(b, l, -1).mse(k);
                    if (v > 0) m.add(l, v);
                }
                mse.addSeries(m);
            }
        }
        NumberAxis layerAxis = new NumberAxis("decoder layer");
        layerAxis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(layerAxis);
        NumberAxis spAxis = new NumberAxis(String.format(Locale.ROOT, "sparsity (share < %.3g)", r.options.tau()));
        spAxis.setRange(0, 1);
        plot.add(new XYPlot(sp, null, spAxis, lines()), 1);
        if (mse.getSeriesCount() > 0) {
            LogAxis mseAxis = new LogAxis("MSE(S - S')");
            mseAxis.setSmallestValue(1e-12);
            mseAxis.setNumberFormatOverride(new java.text.DecimalFormat("0.0E0"));
            plot.add(new XYPlot(mse, null, mseAxis, lines()), 1);
        }
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        save(chart, png, 900, mse.getSeriesCount() > 0 ? 800 : 450);
    }

    /** The bit-allocation chart a CASP compression writes into its output folder. */
    public static final String BIT_ALLOCATION = "casp-bit-allocation.png";

    /**
     * The stored bits per weight of every compressed linear of a run, per layer
     * ({@link #bitAllocation(List, String, Path)}), titled with the model's name.
     */
    public static void bitAllocation(List<BlockResult> blocks, Path model, Path png) throws IOException {
        List<BitsRow> rows = new ArrayList<>();
        for (BlockResult b : blocks) {
            for (LinearResult r : b.linears()) {
                String name = r.name().substring(r.name().indexOf('.') + 1);
                rows.add(new BitsRow(r.layer(), name + (r.lowRank() != null ? " (low-rank)" : ""), r.effectiveBits()));
            }
        }
        bitAllocation(rows, "CASP bit allocation: " + modelName(model), png);
    }

    /**
     * Bars of the chosen width per decoder layer, one bar per linear (or one per layer when the
     * allocation unit is the layer).
     *
     * @param rows (layer, linear name, bits) triples in order
     */
    public static void bitAllocation(List<BitsRow> rows, String title, Path png) throws IOException {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        for (BitsRow r : rows) data.addValue(r.bits(), r.linear(), "layer " + r.layer());
        BarRenderer bars = new BarRenderer();
        bars.setShadowVisible(false);
        bars.setBarPainter(new org.jfree.chart.renderer.category.StandardBarPainter());
        CategoryPlot plot = new CategoryPlot(data, new CategoryAxis("decoder layer"),
                new NumberAxis("stored bits per original weight"), bars);
        plot.getRangeAxis().setLowerBound(0);
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        save(chart, png, 900, 450);
    }

    /** A model folder's name for titles: its parent's when it is called "model" (shared/models/NAME/model). */
    public static String modelName(Path dir) {
        Path abs = dir.toAbsolutePath().normalize();
        String n = abs.getFileName() == null ? abs.toString() : abs.getFileName().toString();
        return n.equals("model") && abs.getParent() != null && abs.getParent().getFileName() != null
                ? abs.getParent().getFileName().toString() : n;
    }

    /** One bar of {@link #bitAllocation}: effective bits per weight of one linear. */
    public record BitsRow(int layer, String linear, double bits) {}

    private static XYLineAndShapeRenderer lines() {
        return new XYLineAndShapeRenderer(true, true);
    }

    private static void save(JFreeChart chart, Path png, int w, int h) throws IOException {
        Path abs = png.toAbsolutePath();
        if (abs.getParent() != null) Files.createDirectories(abs.getParent());
        Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try {
            ChartUtils.saveChartAsPNG(tmp.toFile(), chart, w, h);
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
