import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    reporters: ["default"],
    // Two cores: one worker for unit files and one for the integration files beside the control plane.
    maxWorkers: 2,
    minWorkers: 1,
    // Room for the control plane's graceful stop (SIGTERM, then SIGKILL after up to 30 s in all)
    // before vitest gives up on teardown and exits (the launcher's exit handler then SIGKILLs).
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          // Unit tests run under TestClock, deterministically; they never start a control plane.
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          // Integration tests share one real control plane (etcd, kube-apiserver,
          // kube-controller-manager) started by the global setup, which vitest runs only when a
          // file of this project is selected: `vitest run --project unit` starts nothing.
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/kube/globalSetup.ts"],
          setupFiles: ["test/kube/integrationSetup.ts"],
          // Files run one at a time in a single fork: a file that restarts kube-apiserver would
          // otherwise break the requests of a file running beside it. (fileParallelism and
          // maxWorkers are root-only options; singleFork is the per-project way.)
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
