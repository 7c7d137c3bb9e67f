# syntax=docker/dockerfile:1
# trellis/proxy: the sidecar of the Envoy template. Envoy (the pinned envoyproxy/envoy image, the API of
# go-control-plane envoy v1.40.0 that tools/peers/envoy-validate checks against) plus Node and Trellis:
# `trellis agent` starts Envoy; the init container runs `trellis iptables --apply` (iptables, nft and
# legacy backends). From the repository root:
#   docker build -f deploy/images/proxy.Dockerfile -t ghcr.io/trellis-mesh/trellis/proxy:0.1.0 .
# `npm run images` builds it without Docker and without Envoy (no Envoy base image here): Node, /app and
# iptables only.
ARG ENVOY_IMAGE=envoyproxy/envoy:v1.40.0
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN npm ci && npm prune --omit=dev

FROM ${NODE_IMAGE} AS node

FROM ${ENVOY_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 1337 proxy && useradd -u 1337 -g 1337 -M -d /nonexistent -s /usr/sbin/nologin proxy \
 && printf '#!/usr/local/bin/node\nimport("/app/dist/control-plane/main.js").catch((err) => {\n  console.error(err);\n  process.exit(1);\n});\n' \
      > /usr/local/bin/trellis && chmod 0755 /usr/local/bin/trellis
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/package.json /app/package.json
COPY --from=build /src/dist /app/dist
COPY --from=build /src/node_modules /app/node_modules
ENV NODE_ENV=production
WORKDIR /app
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/trellis"]
CMD ["agent"]
