package casp.cli;

import casp.model.LlavaModel;
import picocli.CommandLine.Option;

/** {@code --frames N} of the commands that read video records from LLaVA conversation data. */
final class VideoFramesOption {
    @Option(names = "--frames", paramLabel = "N", defaultValue = "0",
            description = "frames sampled uniformly from every video record (default: the processor config's num_frames, else 8)")
    int frames;

    /** Applies --frames to the models that encode the data's videos. */
    void applyTo(LlavaModel... models) {
        for (LlavaModel m : models) if (m != null) m.setFramesPerVideo(frames);
    }
}
