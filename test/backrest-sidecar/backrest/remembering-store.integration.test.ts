import { expect, it } from "vitest";
import { BackrestApi, ConfigConflictError } from "../../../src/backrest-sidecar/backrest/api.js";
import { ApiConfigStore } from "../../../src/backrest-sidecar/backrest/api-store.js";
import { RememberingStore } from "../../../src/backrest-sidecar/backrest/remembering-store.js";
import type { Json } from "../../../src/backrest-sidecar/backrest/store.js";
import { describeWithBackrest, startBackrestWithRepo } from "../../support/backrest.js";
import { useScope } from "../../support/scope.js";

const planIds = (data: Json) => ((data.plans as Json[] | undefined) ?? []).map((p) => p.id);
const plan = (id: string) => ({ id, repo: "default", paths: ["/etc"], schedule: { disabled: true } });

describeWithBackrest("the daemon's remembered config, against a running Backrest", () => {
  const scope = useScope();

  it("answers from what Backrest last said; a UI save in between makes the next write refused, and the read after it is Backrest's", async () => {
    const { backrest } = await startBackrestWithRepo(scope);
    const store = new RememberingStore(new ApiConfigStore(new BackrestApi(backrest.url)));

    const first = await store.read();
    const stored = await store.write({ ...first.data, plans: [plan("ours-1")] }, first);
    expect(stored?.data.modno).toBe(Number(first.data.modno ?? 0) + 1);
    // The next read is SetConfig's answer, not a new GetConfig: the same object.
    expect(await store.read()).toBe(stored);
    expect(planIds((await store.read()).data)).toEqual(["ours-1"]);

    // A person saves in the UI: the remembered config is now stale, and Backrest refuses a write from it.
    const ui = await backrest.ok("GetConfig");
    await backrest.ok("SetConfig", { ...ui, plans: [...(ui.plans as Json[]), plan("ui-made")] });
    const stale = await store.read();
    expect(planIds(stale.data)).toEqual(["ours-1"]);
    await expect(
      store.write({ ...stale.data, plans: [plan("ours-1"), plan("ours-2")] }, stale),
    ).rejects.toThrow(ConfigConflictError);
    // After the refusal the store reads Backrest again: the person's plan is there to merge with.
    const fresh = await store.read();
    expect(planIds(fresh.data).sort()).toEqual(["ours-1", "ui-made"]);
    expect(planIds((await backrest.ok("GetConfig")) as Json).sort()).toEqual(["ours-1", "ui-made"]);

    // forget(): read anew even with nothing refused.
    await backrest.ok("SetConfig", { ...(await backrest.ok("GetConfig")), plans: [plan("ui-2")] });
    store.forget();
    expect(planIds((await store.read()).data)).toEqual(["ui-2"]);
  });
});
