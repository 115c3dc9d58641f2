import { closeSync } from "node:fs";
import { isErrno } from "../system/errors.js";
import { nextTurn } from "../system/signals.js";
import type { ArchiveWriter } from "./archive-writer.js";
import { type FileRead, FileReads } from "./file-reads.js";
import type { TarEntry } from "./header.js";
import type { ArchiveItem, LiveChanges } from "./tree.js";

/** With a reader thread, it starts after this many regular files (it costs ~50 ms and ~18 MiB). */
const THREAD_AFTER = 1024;

/**
 * Writes items (from walkTree, or made up such as an index) into an archive, as GNU tar does with a
 * live tree: a regular file's header is taken from the file once it is open, so the header, the
 * data and the hard-link check all describe the same file. A file that vanished is left out, one
 * that shrank is padded with zeros to its header's size, one that grew is cut there, one that
 * changed while read is kept as read: each is reported to `changes`, and the archive stays valid.
 */
export class TreeArchiver {
  /** dev:inode -> archive name of the first link written. */
  private readonly firstLinks = new Map<string, string>();
  private readonly reads = new FileReads();
  private files = 0;

  /** `readerThread`: read regular files ahead in a worker thread (FileReads). */
  constructor(
    private readonly writer: ArchiveWriter,
    private readonly changes: LiveChanges,
    private readonly readerThread = false,
  ) {
    // The reader thread ends with the writer (writeArchive always closes it).
    writer.atClose(() => this.reads.close());
  }

  async add(items: readonly ArchiveItem[]): Promise<void> {
    const files: string[] = [];
    for (const item of items) if (isRegularSource(item)) files.push(item.source as string);
    this.files += files.length;
    if (this.readerThread && this.files >= THREAD_AFTER) this.reads.useThread();
    this.reads.push(files);
    const slice = this.writer.slice;
    for (const item of items) {
      if (slice?.due()) await slice.pause();
      else if (this.writer.wantsTurn()) await nextTurn();
      if (isRegularSource(item)) {
        const source = item.source as string;
        // Synchronous while the reads are ready; a promise only at a slot's end and for big files.
        let read: FileRead;
        try {
          const next = this.reads.next();
          read = next instanceof Promise ? await next : next;
        } catch (error) {
          if (this.unreadable(source, error)) continue;
          throw error;
        }
        const rest = this.addFile(item.entry, source, read);
        if (rest) await rest;
      } else if (!(item.links && this.linked(item.entry, item.links.key))) {
        this.writer.writeEntry(item.entry, item.content);
      }
    }
  }

  async addAll(batches: AsyncIterable<ArchiveItem[]>): Promise<void> {
    for await (const batch of batches) await this.add(batch);
  }

  /** A later name of an inode already written becomes a hard link to it (true: written). */
  private linked(entry: TarEntry, key: string): boolean {
    const first = this.firstLinks.get(key);
    if (first === undefined) {
      this.firstLinks.set(key, entry.name);
      return false;
    }
    this.writer.writeEntry({ ...entry, type: "hardlink", size: 0, linkname: first });
    return true;
  }

  /** A file gone or replaced before it could be opened is reported and left out (true). */
  private unreadable(source: string, error: unknown): boolean {
    if (isErrno(error, "ENOENT")) {
      this.changes.note(source, "vanished before it could be read; not archived");
      return true;
    }
    if (isErrno(error, "ELOOP") || isErrno(error, "ENXIO")) {
      this.changes.note(source, "was replaced by something else while being archived; not archived");
      return true;
    }
    return false;
  }

  /**
   * One regular file of the walk, as read: its header from the open file, then its content (read
   * already, or copied here from the open file, in slices for a big one: then a promise).
   */
  private addFile(walked: TarEntry, source: string, read: FileRead): Promise<void> | undefined {
    if (read.kind === "not-file") {
      this.changes.note(source, "is no longer a regular file; not archived");
      return undefined;
    }
    const { size, fd } = read;
    const entry: TarEntry = {
      name: walked.name,
      type: "file",
      mode: read.mode,
      uid: read.uid,
      gid: read.gid,
      mtime: read.mtime,
      size,
      ...(walked.xattrs ? { xattrs: walked.xattrs } : {}),
    };
    if (read.linkKey !== undefined && this.linked(entry, read.linkKey)) {
      if (read.kind === "open") closeSync(fd);
      return undefined;
    }
    this.writer.writeHeader(entry);
    if (read.data) {
      this.writer.write(read.data);
      this.finishFile(source, size, read.data.length, read.change);
      return undefined;
    }
    let closeHere = true;
    try {
      const first = this.writer.copySome(fd, 0, size);
      if (first.ended || first.copied === size) {
        this.finishFile(source, size, first.copied, this.reads.changeOf(read, first.copied));
        return undefined;
      }
      // A big file: the rest in slices, the event loop running between them.
      closeHere = false;
      return this.writer
        .copyFrom(fd, first.copied, size - first.copied)
        .then((rest) => {
          const copied = first.copied + rest;
          this.finishFile(source, size, copied, this.reads.changeOf(read, copied));
        })
        .finally(() => closeSync(fd));
    } finally {
      if (closeHere) closeSync(fd);
    }
  }

  /** Pad a file that shrank; report one that shrank, grew or changed while it was read. */
  private finishFile(source: string, size: number, copied: number, change: number): void {
    if (copied < size) {
      this.writer.zeros(size - copied);
      this.changes.note(source, `shrank by ${size - copied} bytes while being read; padded with zeros`);
    }
    this.writer.pad(size);
    if (copied < size || change === 0) return;
    this.changes.note(
      source,
      change > 0
        ? `grew by ${change - size} bytes while being read; archived the first ${size}`
        : "changed while being read; archived as read",
    );
  }
}

function isRegularSource(item: ArchiveItem): boolean {
  return item.entry.type === "file" && item.source !== undefined && item.content === undefined;
}
