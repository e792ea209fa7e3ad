package rtdp.spark;

import java.nio.charset.StandardCharsets;

import org.apache.spark.sql.api.java.UDF1;
import org.bouncycastle.crypto.digests.Blake2bDigest;

/**
 * BLAKE2b with a 128-bit digest of a string's UTF-8 bytes, as lower-case hex: Python's
 * {@code hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}. The envelope's point_key
 * is this hash of "metric|k=v,...|ums_ts_"; the stream recomputes it in the JVM to verify a
 * record's key without sending the record through Python. Null in, null out.
 */
public final class Blake2b128Hex implements UDF1<String, String> {
  private static final long serialVersionUID = 1L;
  private static final int DIGEST_BYTES = 16;
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  @Override
  public String call(String text) {
    if (text == null) {
      return null;
    }
    byte[] input = text.getBytes(StandardCharsets.UTF_8);
    Blake2bDigest digest = new Blake2bDigest(DIGEST_BYTES * 8);
    digest.update(input, 0, input.length);
    byte[] hash = new byte[DIGEST_BYTES];
    digest.doFinal(hash, 0);
    char[] out = new char[DIGEST_BYTES * 2];
    for (int i = 0; i < DIGEST_BYTES; i++) {
      out[2 * i] = HEX[(hash[i] >> 4) & 0xf];
      out[2 * i + 1] = HEX[hash[i] & 0xf];
    }
    return new String(out);
  }
}
