import { defineConfig } from "vitest/config";

// Two projects: fast unit tests, and integration tests (`*.integration.test.ts`) that need root,
// a Docker engine, btrfs on loop devices and the restic client. Run one alone with
// `npx vitest run --project integration test/path/to/file.integration.test.ts`.
export default defineConfig({
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.integration.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.integration.test.ts"],
          pool: "forks",
          testTimeout: 180_000,
          hookTimeout: 120_000,
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
    ],
  },
});
