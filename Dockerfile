# syntax=docker/dockerfile:1
#
# k8s-vectordb-sync container image.
#
#   build   – bundles src/main.ts and the production code it imports into one CommonJS file
#             (`npm run bundle`: src/bundle.ts, esbuild): pure JavaScript, arch-independent, so under
#             buildx it runs on the build machine's platform even for a foreign target. Bundling
#             drops the modules the controller never runs, which is most of its memory
#             (BENCHMARKS.md); src/bundle.ts says what else it leaves out, and why CommonJS.
#   runtime – Node.js 24 LTS slim with that one file: no node_modules, no npm/yarn/corepack, files
#             owned by root and read-only to the process, numeric non-root user (so `runAsNonRoot`
#             can be verified by the kubelet). Nothing is written at run time: the image works with a
#             read-only root filesystem.
#
# test/integration/container-smoke.test.ts reproduces the runtime stage without a container engine
# (the same bundle, alone in a folder, unprivileged user, read-only root) and
# test/unit/dockerfile.test.ts lints this file.

ARG NODE_IMAGE=node:24-trixie-slim

FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run bundle

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="k8s-vectordb-sync" \
      org.opencontainers.image.description="Kubernetes controller that keeps a vector database's index of cluster resources in step with the cluster" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# The package managers are not needed to run and only widen the attack surface.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx \
      /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ENV NODE_ENV=production
# V8 takes about 33 MiB from malloc to parse the bundle at start, and frees it. From glibc's main
# heap, the small allocations made after it would keep most of that resident for good; blocks of
# 32 KiB and more get mappings of their own, returned when freed (BENCHMARKS.md, "Memory").
ENV MALLOC_MMAP_THRESHOLD_=32768
WORKDIR /app
COPY --from=build /app/dist/bundle/main.cjs ./main.cjs
# 1000 is the image's "node" user; numeric so that Kubernetes can check runAsNonRoot.
USER 1000:1000
EXPOSE 8081 8082
# Exec form: node is PID 1 and receives SIGTERM itself; the controller flushes and exits 0.
ENTRYPOINT ["node", "main.cjs"]
