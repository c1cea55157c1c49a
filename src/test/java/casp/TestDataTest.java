package casp;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TestDataTest {
    @TempDir
    Path tmp;

    @Test
    void systemPropertyWinsAndMissingAssetsSkipOrFailOnCi() throws IOException {
        String old = System.getProperty("casp.shared");
        try {
            Path shared = tmp.resolve("shared");
            Files.createDirectories(shared.resolve("models/m1"));
            System.setProperty("casp.shared", shared.toString());
            assertEquals(shared.toAbsolutePath().normalize(), TestData.sharedDir());
            assertEquals(shared.resolve("models/m1").toAbsolutePath().normalize(), TestData.modelDir("m1"));

            String ci = System.getenv("CI");
            Class<? extends Throwable> expected = ci != null && !ci.isBlank()
                    ? AssertionFailedError.class : TestAbortedException.class;
            assertThrows(expected, () -> TestData.modelDir("absent"));
            System.setProperty("casp.shared", tmp.resolve("nothing-here").toString());
            assertThrows(expected, TestData::sharedDir);
        } finally {
            if (old == null) System.clearProperty("casp.shared");
            else System.setProperty("casp.shared", old);
        }
    }
}
