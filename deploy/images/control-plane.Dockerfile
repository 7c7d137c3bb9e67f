# syntax=docker/dockerfile:1
# trellis/control-plane: `trellis control-plane` (xDS, CA, admission webhooks). From the repository root:
#   docker build -f deploy/images/control-plane.Dockerfile -t ghcr.io/trellis-mesh/trellis/control-plane:0.1.0 .
# The same image as `npm run images` builds without Docker: Node 20, /app (dist/ + production node_modules),
# `trellis` on PATH, user nonroot (65532), entrypoint `trellis`, command `control-plane`.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
# npm ci runs `prepare` (protos + tsc into dist/); then only the production packages stay.
RUN npm ci && npm prune --omit=dev

FROM ${NODE_IMAGE}
RUN groupadd -g 65532 nonroot && useradd -u 65532 -g 65532 -d /home/nonroot -m -s /usr/sbin/nologin nonroot \
 && printf '#!/usr/local/bin/node\nimport("/app/dist/control-plane/main.js").catch((err) => {\n  console.error(err);\n  process.exit(1);\n});\n' \
      > /usr/local/bin/trellis && chmod 0755 /usr/local/bin/trellis
COPY --from=build /src/package.json /app/package.json
COPY --from=build /src/dist /app/dist
COPY --from=build /src/node_modules /app/node_modules
# MALLOC_MMAP_THRESHOLD_: large freed buffers go back to the kernel (deploy/images/runtime-env.ts says why).
ENV NODE_ENV=production MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
USER 65532:65532
EXPOSE 15012 15014 15017
ENTRYPOINT ["/usr/local/bin/trellis"]
CMD ["control-plane"]
