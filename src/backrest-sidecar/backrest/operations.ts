import type { BackrestApi } from "./api.js";
import type { Json } from "./store.js";

/**
 * Whether Backrest is running a backup of this plan now (an operation of it in progress), as its
 * API says; undefined when it does not answer (then nobody can tell).
 */
export async function backupRunning(api: BackrestApi, planId: string): Promise<boolean | undefined> {
  try {
    const answer = await api.call("GetOperations", { selector: { planId }, lastN: "50" });
    const operations = Array.isArray(answer.operations) ? (answer.operations as Json[]) : [];
    return operations.some((op) => op.status === "STATUS_INPROGRESS" && "operationBackup" in op);
  } catch {
    return undefined;
  }
}
