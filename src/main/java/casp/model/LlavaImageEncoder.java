package casp.model;

import casp.io.BadInputException;
import casp.io.ImagePreprocessor;
import casp.io.ModelConfig;
import casp.io.ModelFolder;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The image side of LLaVA: preprocessing, CLIP vision tower, feature selection
 * (vision_feature_layer, strategy "default" drops the class token, "full" keeps it) and the
 * projector. {@link #encode} turns one image into the rows that replace its placeholder tokens
 * in the language model's input embeddings.
 */
public final class LlavaImageEncoder {
    private final ImagePreprocessor preprocessor;
    private final ClipVisionModel tower;
    private final LlavaProjector projector;
    private final ModelConfig.LlavaSettings settings;
    private final int tokensPerImage;

    public LlavaImageEncoder(ImagePreprocessor preprocessor, ClipVisionModel tower, LlavaProjector projector,
                             ModelConfig.LlavaSettings settings) {
        this.preprocessor = preprocessor;
        this.tower = tower;
        this.projector = projector;
        this.settings = settings;
        this.tokensPerImage = settings.featureSelectStrategy().equals("full") ? tower.numTokens() : tower.numTokens() - 1;
        if (preprocessor.height() != tower.config().imageSize() || preprocessor.width() != tower.config().imageSize())
            throw new BadInputException("preprocessor_config.json crops to " + preprocessor.width() + "x" + preprocessor.height()
                    + " but the vision tower takes " + tower.config().imageSize() + "x" + tower.config().imageSize());
        int fl = settings.visionFeatureLayer();
        if (fl < -(tower.numLayers() + 1) || fl > tower.numLayers())
            throw new BadInputException("config.json: vision_feature_layer " + fl + " is out of range for a "
                    + tower.numLayers() + "-layer vision tower");
    }

    /** Loads the encoder of a LLaVA model folder (preprocessor_config.json, vision tower, projector). */
    public static LlavaImageEncoder load(ModelFolder folder) {
        ModelConfig cfg = folder.config();
        if (!cfg.isLlava()) throw new BadInputException(folder.dir() + ": not a LLaVA model (model_type is '" + cfg.modelType() + "')");
        Path ppc = folder.file("preprocessor_config.json");
        // Without a preprocessor config, CLIP's defaults at the tower's resolution are what HF would use.
        ImagePreprocessor pp = Files.isRegularFile(ppc) ? ImagePreprocessor.load(ppc) : ImagePreprocessor.clip(cfg.vision().imageSize());
        ClipVisionModel tower = ClipVisionModel.load(folder.weights(), folder.visionPrefix(), cfg.vision());
        LlavaProjector proj = LlavaProjector.load(folder.weights(), folder.projectorPrefix(), cfg.llava().projectorAct(),
                cfg.llava().projectorBias(), cfg.vision().hiddenSize(), cfg.text().hiddenSize());
        return new LlavaImageEncoder(pp, tower, proj, cfg.llava());
    }

    public ImagePreprocessor preprocessor() { return preprocessor; }

    public ClipVisionModel tower() { return tower; }

    public LlavaProjector projector() { return projector; }

    /** Visual tokens one image contributes (patches, plus the class token with strategy "full"). */
    public int tokensPerImage() { return tokensPerImage; }

    /** Width of each visual token = the language model's hidden size. */
    public int embeddingSize() { return projector.outputSize(); }

    /** Selected vision features [tokensPerImage, visionHidden] (before the projector). */
    public float[] selectedFeatures(float[] pixels) {
        float[] hs = tower.hiddenState(pixels, settings.visionFeatureLayer());
        if (tokensPerImage == tower.numTokens()) return hs;
        int h = tower.hiddenSize();
        float[] sel = new float[tokensPerImage * h];
        System.arraycopy(hs, h, sel, 0, sel.length); // drop the class token (row 0)
        return sel;
    }

    /** Projected visual tokens [tokensPerImage, embeddingSize()] for preprocessed pixels. */
    public float[] encode(float[] pixels) {
        return projector.forward(selectedFeatures(pixels), tokensPerImage);
    }

    /** Decodes, preprocesses and encodes an image file. */
    public float[] encode(Path image) {
        return encode(preprocessor.process(image));
    }
}
