import { StowageError } from "../system/errors.js";

/** An archive's content that restore, list or compact refuses: escapes, bad links, a corrupt index. */
export class ArchiveContentError extends StowageError {
  constructor(message: string) {
    super("INVALID_INPUT", message);
  }
}
