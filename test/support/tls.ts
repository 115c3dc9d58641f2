import path from "node:path";
import { run } from "../../src/system/exec.js";

/**
 * A self-signed certificate for localhost and 127.0.0.1 made with openssl: `<dir>/<name>.crt` and
 * `.key`.
 */
export async function selfSignedCert(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const subject = ["-subj", `/CN=${name}`, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"];
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
    ...subject,
  ]);
  return { cert, key };
}
