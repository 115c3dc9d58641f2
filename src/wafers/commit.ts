import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { TimeSlice } from "../system/signals.js";
import { TreeArchiver } from "../tar/archive-tree.js";
import { writeArchive } from "../tar/archive-writer.js";
import type { TarEntry } from "../tar/header.js";
import { type ByteString, bytesOf } from "../tar/names.js";
import { type ArchiveItem, LiveChanges, type TreeItem, walkTree } from "../tar/tree.js";
import { checkName } from "./names.js";
import { WaferError, type WaferStore } from "./store.js";

const OPAQUE = "trusted.overlay.opaque";

function marker(name: ByteString, like: TarEntry): TarEntry {
  return { name, type: "file", mode: 0o644, uid: like.uid, gid: like.gid, size: 0, mtime: like.mtime };
}

/**
 * The wafer's own layer as OCI layer entries: a whiteout (0/0 character device) becomes an empty
 * `.wh.<name>`, an opaque directory gets `.wh..wh..opq`; overlayfs' own xattrs are left out.
 */
function layerItems(item: TreeItem): ArchiveItem[] {
  if (item.whiteout) {
    const dir = path.posix.dirname(item.entry.name);
    const whiteout = `${dir === "." ? "" : `${dir}/`}.wh.${path.posix.basename(item.entry.name)}`;
    return [{ entry: marker(whiteout, item.entry) }];
  }
  if (item.entry.type === "dir" && item.xattrs.get(OPAQUE)?.toString() === "y")
    return [item, { entry: marker(`${item.entry.name}/.wh..wh..opq`, item.entry) }];
  return [item];
}

/**
 * `wafers commit NAME -o FILE`: write the wafer's own layer as a tar (atomically replacing FILE).
 * All or nothing: a file that changes while it is read (the stack is in use) fails the commit and
 * FILE stays as it was.
 */
export async function commitWafer(
  store: WaferStore,
  name: string,
  output: string,
  warn: (message: string) => void,
): Promise<void> {
  checkName(name);
  if (!store.exists(name)) throw new WaferError(`wafer '${name}' not found in ${store.root}`);
  const changes = new LiveChanges(warn);
  const write = async (fd: number) => {
    await writeArchive(fd, 0, { slice: new TimeSlice() }, async (writer) => {
      const archiver = new TreeArchiver(writer, changes);
      const walk = walkTree(bytesOf(store.data(name)), {
        prefix: "",
        includeRoot: false,
        skipXattr: (key) => key.startsWith("trusted.overlay."),
        warn,
        changes,
      });
      for await (const batch of walk) await archiver.add(batch.flatMap(layerItems));
    });
  };
  const beforeCommit = () => {
    if (changes.count > 0)
      throw new WaferError(
        `${changes.count} file(s) of wafer '${name}' changed while being read (is its stack in use?); ${output} left as it was`,
      );
  };
  await writeFileAtomic(path.resolve(output), write, { mode: 0o644, beforeCommit });
}
