// Verifies a sftriggerd webhook with the JDK alone (javax.crypto, java.util.Base64).
//
// Usage: java Verify.java vector.json   (exit 0 when the signature holds, 1 when not)
//
// In a receiver, pass the request's raw body bytes exactly as received, never a
// re-serialised JSON object, and its webhook-id, webhook-timestamp and webhook-signature
// headers; answer 2xx only after verify returns true.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Verify {
    // Refuse timestamps further than this from now: replayed requests.
    static final long TOLERANCE_S = 5 * 60;

    static boolean verify(String secret, String msgId, String timestamp, byte[] body,
            String signatureHeader, long nowS) throws Exception {
        if (!timestamp.matches("[0-9]{1,18}")) return false;
        if (Math.abs(nowS - Long.parseLong(timestamp)) > TOLERANCE_S) return false;
        byte[] key = Base64.getDecoder().decode(secret.replaceFirst("^whsec_", ""));
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        mac.update((msgId + "." + timestamp + ".").getBytes(StandardCharsets.UTF_8));
        byte[] expected = Base64.getEncoder().encode(mac.doFinal(body));
        // The header may hold several signatures ("v1,<a> v1,<b>") while a secret is
        // rotated: one that matches is enough.
        for (String candidate : signatureHeader.split(" ")) {
            String[] parts = candidate.split(",", 2);
            if (parts.length == 2 && parts[0].equals("v1")
                    && MessageDigest.isEqual(
                            parts[1].getBytes(StandardCharsets.UTF_8), expected)) {
                return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> vector = readFlatJson(Files.readString(Path.of(args[0])));
        String now = vector.get("now");
        boolean ok = verify(vector.get("secret"), vector.get("id"), vector.get("timestamp"),
                vector.get("body").getBytes(StandardCharsets.UTF_8), vector.get("signature"),
                now != null ? Long.parseLong(now) : System.currentTimeMillis() / 1000);
        System.out.println(ok ? "verified" : "NOT verified");
        System.exit(ok ? 0 : 1);
    }

    // The JDK has no JSON parser; the test vector is one flat object of strings and
    // integers, which this reads (a real receiver gets the parts from its HTTP request).
    static Map<String, String> readFlatJson(String text) {
        Map<String, String> values = new HashMap<>();
        int[] at = {text.indexOf('{') + 1};
        while (true) {
            skipSpace(text, at);
            if (text.charAt(at[0]) == '}') return values;
            String name = readString(text, at);
            skipSpace(text, at);
            at[0]++; // the colon
            skipSpace(text, at);
            String value;
            if (text.charAt(at[0]) == '"') {
                value = readString(text, at);
            } else {
                int start = at[0];
                while (at[0] < text.length() && "-0123456789".indexOf(text.charAt(at[0])) >= 0) {
                    at[0]++;
                }
                value = text.substring(start, at[0]);
            }
            values.put(name, value);
            skipSpace(text, at);
            if (text.charAt(at[0]) == ',') at[0]++;
        }
    }

    static void skipSpace(String text, int[] at) {
        while (Character.isWhitespace(text.charAt(at[0]))) at[0]++;
    }

    static String readString(String text, int[] at) {
        StringBuilder out = new StringBuilder();
        at[0]++; // the opening quote
        while (true) {
            char c = text.charAt(at[0]++);
            if (c == '"') return out.toString();
            if (c != '\\') {
                out.append(c);
                continue;
            }
            char escaped = text.charAt(at[0]++);
            switch (escaped) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'u' -> {
                    out.append((char) Integer.parseInt(text.substring(at[0], at[0] + 4), 16));
                    at[0] += 4;
                }
                default -> out.append(escaped); // \" \\ \/
            }
        }
    }
}
