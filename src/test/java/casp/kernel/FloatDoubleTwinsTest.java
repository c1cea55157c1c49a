package casp.kernel;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The float and double twins of the GEMM driver and the triangular kernels are one algorithm
 * written twice (Java generics do not reach primitive arrays). Their code, with comments removed
 * and the element type's names mapped to one word, must be the same line for line, apart from the
 * lines each twin's comment says differ (the GEMM cache blocking, sized for 4- and 8-byte elements).
 */
class FloatDoubleTwinsTest {
    private static final Path KERNEL = Path.of("src/main/java/casp/kernel");

    @Test
    void gemmDriversDifferOnlyInTheirCacheBlocking() throws IOException {
        assertTwins("SgemmDriver", "DgemmDriver", Pattern.compile("static final int (KC|MC|CHUNK|NC) = .*"));
    }

    @Test
    void triangularKernelsAreTheSame() throws IOException {
        assertTwins("TriangularF", "TriangularD", null);
    }

    private static void assertTwins(String floatName, String doubleName, Pattern allowed) throws IOException {
        List<String> f = normalized(floatName, floatName, doubleName, allowed), d = normalized(doubleName, floatName, doubleName, allowed);
        assertEquals(String.join("\n", f), String.join("\n", d), floatName + " and " + doubleName + " have drifted apart");
    }

    /** Code lines without comments, blank lines or allowed lines; element type names mapped to T. */
    private static List<String> normalized(String name, String floatName, String doubleName, Pattern allowed) throws IOException {
        String s = Files.readString(KERNEL.resolve(name + ".java"))
                .replaceAll("(?s)/\\*.*?\\*/", "")
                .replaceAll("//[^\n]*", "");
        List<String> out = new ArrayList<>();
        for (String line : s.split("\n")) {
            String t = line.strip();
            if (t.isEmpty() || allowed != null && allowed.matcher(t).matches()) continue;
            t = t.replace(floatName, "TWIN").replace(doubleName, "TWIN")
                    .replace("sgemm", "xgemm").replace("dgemm", "xgemm").replace("Sgemm", "Xgemm").replace("Dgemm", "Xgemm")
                    .replaceAll("\\bfloat\\b", "T").replaceAll("\\bdouble\\b", "T").replaceAll("\\bFloat\\b", "T").replaceAll("\\bDouble\\b", "T")
                    .replaceAll("\\b(\\d+)f\\b", "$1").replaceAll("\\b(\\d+)\\.0\\b", "$1");
            out.add(t);
        }
        return out;
    }
}
