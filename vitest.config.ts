import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Unit tests run under TestClock; integration tests share one real control plane.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ["default"],
  },
})
