// Verifies a sftriggerd webhook with Node.js's own node:crypto.
//
// Usage: node verify.mjs vector.json   (exit 0 when the signature holds, 1 when not)
//
// In a receiver, pass the request's raw body bytes exactly as received (for example
// express.raw({type: "application/json"})), never a re-serialised JSON object, and its
// webhook-id, webhook-timestamp and webhook-signature headers; answer 2xx only after it
// returns true.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

const TOLERANCE_S = 5 * 60; // refuse timestamps further than this from now: replayed requests

export function verify(secret, msgId, timestamp, body, signatureHeader, nowS) {
  if (!/^[0-9]+$/.test(timestamp)) return false;
  if (Math.abs(nowS - Number(timestamp)) > TOLERANCE_S) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${msgId}.${timestamp}.`)
    .update(body)
    .digest();
  // The header may hold several signatures ("v1,<a> v1,<b>") while a secret is rotated:
  // one that matches is enough.
  return signatureHeader.split(" ").some((candidate) => {
    const [version, signature] = candidate.split(",", 2);
    if (version !== "v1" || signature === undefined) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const vector = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ok = verify(
  vector.secret,
  vector.id,
  String(vector.timestamp),
  Buffer.from(vector.body, "utf8"),
  vector.signature,
  vector.now ?? Math.floor(Date.now() / 1000),
);
console.log(ok ? "verified" : "NOT verified");
process.exit(ok ? 0 : 1);
