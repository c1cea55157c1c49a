import casp.io.SafeTensorsWriter;
import casp.tensor.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Writes a random-weight "shape twin" of an AQLM 1x16 Llama-2-7B checkpoint (ISTA-DASLab's
 * Llama-2-7b-AQLM-2Bit-1x16-hf layout: every decoder linear as int16 codes [out, in/8, 1], one
 * fp16 codebook [1, 65536, 1, 8] and fp16 scales [out, 1, 1, 1]; embeddings and head fp16).
 * The values are random: the twin is for memory and speed, not quality. Run from the repository
 * root after a build:  java -cp target/casp.jar src/scripts/AqlmTwin.java OUT_DIR [LAYERS]
 */
public class AqlmTwin {
    static final int HIDDEN = 4096, INTER = 11008, HEADS = 32, VOCAB = 32000, K = 65536, G = 8;

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        int layers = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        Files.createDirectories(out);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        long seed = 1;
        w.add("model.embed_tokens.weight", DType.F16, new long[]{VOCAB, HIDDEN}, halfs((long) VOCAB * HIDDEN, 0.02, seed++));
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            w.add(p + "input_layernorm.weight", DType.F16, new long[]{HIDDEN}, ones(HIDDEN));
            w.add(p + "post_attention_layernorm.weight", DType.F16, new long[]{HIDDEN}, ones(HIDDEN));
            String[] names = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
            for (String n : names) {
                int in = n.equals("mlp.down_proj") ? INTER : HIDDEN, rows = n.startsWith("mlp.") && !n.equals("mlp.down_proj") ? INTER : HIDDEN;
                w.add(p + n + ".codes", DType.I16, new long[]{rows, in / G, 1}, codes((long) rows * (in / G), seed++));
                w.add(p + n + ".codebooks", DType.F16, new long[]{1, K, 1, G}, halfs((long) K * G, 0.3 / Math.sqrt(in), seed++));
                w.add(p + n + ".scales", DType.F16, new long[]{rows, 1, 1, 1}, ones(rows));
            }
        }
        w.add("model.norm.weight", DType.F16, new long[]{HIDDEN}, ones(HIDDEN));
        w.add("lm_head.weight", DType.F16, new long[]{VOCAB, HIDDEN}, halfs((long) VOCAB * HIDDEN, 0.02, seed));
        w.write(out.resolve("model.safetensors"));
        Files.writeString(out.resolve("config.json"), """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
                 "num_hidden_layers": %d, "num_attention_heads": %d, "num_key_value_heads": %d, "vocab_size": %d,
                 "max_position_embeddings": 4096, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
                 "tie_word_embeddings": false, "torch_dtype": "float16", "bos_token_id": 1, "eos_token_id": 2,
                 "quantization_config": {"quant_method": "aqlm", "in_group_size": 8, "out_group_size": 1, "num_codebooks": 1,
                   "nbits_per_codebook": 16, "linear_weights_not_to_quantize": ["model.embed_tokens.weight", "lm_head.weight"]}}
                """.formatted(HIDDEN, INTER, layers, HEADS, HEADS, VOCAB));
    }

    interface Fill { void put(ByteBuffer b, SplittableRandom r); }

    static SafeTensorsWriter.DataSource stream(long n, int bytes, long seed, Fill f) {
        return ch -> {
            SplittableRandom r = new SplittableRandom(seed);
            ByteBuffer b = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (long i = 0; i < n; i++) {
                if (b.remaining() < bytes) flush(b, ch);
                f.put(b, r);
            }
            flush(b, ch);
        };
    }

    static void flush(ByteBuffer b, WritableByteChannel ch) throws java.io.IOException {
        b.flip();
        while (b.hasRemaining()) ch.write(b);
        b.clear();
    }

    static SafeTensorsWriter.DataSource codes(long n, long seed) {
        return stream(n, 2, seed, (b, r) -> b.putShort((short) r.nextInt(K)));
    }

    static SafeTensorsWriter.DataSource halfs(long n, double scale, long seed) {
        return stream(n, 2, seed, (b, r) -> b.putShort(DType.floatToF16((float) (scale * r.nextGaussian()))));
    }

    static SafeTensorsWriter.DataSource ones(long n) {
        return stream(n, 2, 0, (b, r) -> b.putShort(DType.floatToF16(1f)));
    }
}
