// Writes an animated GIF of N frames panning a window across a photo, left to right:
//   java src/scripts/PanGif.java PHOTO OUT.gif [FRAMES] [WINDOW_FRACTION]
// The window is WINDOW_FRACTION (default 0.6) of the photo's width and its full height; frame i
// starts at x = round(i * (width - window) / (FRAMES - 1)). A test clip for video input.
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.File;

public class PanGif {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: java PanGif.java PHOTO OUT.gif [FRAMES] [WINDOW_FRACTION]");
            System.exit(2);
        }
        BufferedImage photo = ImageIO.read(new File(args[0]));
        if (photo == null) {
            System.err.println(args[0] + ": not an image");
            System.exit(2);
        }
        int frames = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        double fraction = args.length > 3 ? Double.parseDouble(args[3]) : 0.6;
        int w = photo.getWidth(), h = photo.getHeight(), window = (int) Math.round(w * fraction);
        ImageWriter writer = ImageIO.getImageWritersByFormatName("gif").next();
        File out = new File(args[1]);
        try (ImageOutputStream stream = ImageIO.createImageOutputStream(out)) {
            writer.setOutput(stream);
            writer.prepareWriteSequence(null);
            for (int i = 0; i < frames; i++) {
                int x = frames == 1 ? 0 : (int) Math.round((double) i * (w - window) / (frames - 1));
                BufferedImage frame = new BufferedImage(window, h, BufferedImage.TYPE_INT_RGB);
                frame.getGraphics().drawImage(photo.getSubimage(x, 0, window, h), 0, 0, null);
                writer.writeToSequence(new IIOImage(frame, null, null), null);
            }
            writer.endWriteSequence();
        } finally {
            writer.dispose();
        }
        System.out.println("wrote " + out + ": " + frames + " frames of " + window + "x" + h);
    }
}
