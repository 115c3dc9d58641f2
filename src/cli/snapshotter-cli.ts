import { NotImplementedError } from "../system/errors.js";

export async function main(_argv: string[]): Promise<number> {
  throw new NotImplementedError();
}
