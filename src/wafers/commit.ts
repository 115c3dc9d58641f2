import path from "node:path";
import { writeFileAtomic } from "../system/atomic-write.js";
import { ArchiveWriter, type WriteItem } from "../tar/archive-writer.js";
import { END_OF_ARCHIVE, type TarEntry } from "../tar/header.js";
import { type TreeItem, walkTree } from "../tar/tree.js";
import { checkName } from "./names.js";
import { WaferError, type WaferStore } from "./store.js";

const OPAQUE = "trusted.overlay.opaque";

function marker(name: string, like: TarEntry): TarEntry {
  return { name, type: "file", mode: 0o644, uid: like.uid, gid: like.gid, size: 0, mtime: like.mtime };
}

/**
 * The wafer's own layer as OCI layer entries: a whiteout (0/0 character device) becomes an empty
 * `.wh.<name>`, an opaque directory gets `.wh..wh..opq`; overlayfs' own xattrs are left out.
 */
function* layerItems(walk: Iterable<TreeItem>): Generator<WriteItem> {
  for (const item of walk) {
    if (item.whiteout) {
      const dir = path.posix.dirname(item.entry.name);
      const whiteout = `${dir === "." ? "" : `${dir}/`}.wh.${path.posix.basename(item.entry.name)}`;
      yield { entry: marker(whiteout, item.entry) };
      continue;
    }
    yield { entry: item.entry, source: item.source };
    if (item.entry.type === "dir" && item.xattrs.get(OPAQUE)?.toString() === "y") {
      yield { entry: marker(`${item.entry.name}/.wh..wh..opq`, item.entry) };
    }
  }
}

/** `wafers commit NAME -o FILE`: write the wafer's own layer as a tar (atomically replacing FILE). */
export async function commitWafer(
  store: WaferStore,
  name: string,
  output: string,
  warn: (message: string) => void,
): Promise<void> {
  checkName(name);
  if (!store.exists(name)) throw new WaferError(`wafer '${name}' not found in ${store.root}`);
  const walk = await walkTree(store.data(name), {
    prefix: "",
    includeRoot: false,
    skipXattr: (key) => key.startsWith("trusted.overlay."),
    warn,
  });
  const write = (fd: number) => {
    const writer = new ArchiveWriter(fd, 0);
    for (const item of layerItems(walk)) writer.add(item);
    writer.write(END_OF_ARCHIVE);
    writer.finish();
  };
  await writeFileAtomic(path.resolve(output), write, { mode: 0o644 });
}
