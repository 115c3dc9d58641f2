import type { ObjectRef, Storage } from "../storage.js";

/**
 * Copy one object from `from` to `to` as it is stored: the blob's name checked against its SHA-256
 * on the way (a corrupt object is refused, 400), an object already there left as it is. False when
 * `from` no longer has it.
 */
export async function copyObject(from: Storage, to: Storage, ref: ObjectRef): Promise<boolean> {
  const source = await from.read(ref);
  if (!source) return false;
  try {
    // The repository's folders (fs) or marker (S3), so a server on the mirror serves it.
    if (ref.type === "config") await to.createRepo(ref.repo);
    await to.save(ref, source.body, {
      size: source.size,
      ...(ref.type !== "config" && ref.name !== undefined ? { sha256: ref.name } : {}),
      mayExist: true,
    });
    return true;
  } finally {
    source.body.destroy();
  }
}
