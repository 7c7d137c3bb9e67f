# syntax=docker/dockerfile:1
# trellis/agent: the sidecar of the proxyless gRPC template (`trellis agent --proxy-type grpc`: certificates,
# the gRPC xDS bootstrap, the local xDS proxy). From the repository root:
#   docker build -f deploy/images/agent.Dockerfile -t ghcr.io/trellis-mesh/trellis/agent:0.1.0 .
# The same image as `npm run images` builds without Docker: Node 20, /app, `trellis` on PATH, user 1337
# (the proxy UID, excluded from traffic capture).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN npm ci && npm prune --omit=dev

FROM ${NODE_IMAGE}
RUN groupadd -g 1337 proxy && useradd -u 1337 -g 1337 -M -d /nonexistent -s /usr/sbin/nologin proxy \
 && printf '#!/usr/local/bin/node\nimport("/app/dist/control-plane/main.js").catch((err) => {\n  console.error(err);\n  process.exit(1);\n});\n' \
      > /usr/local/bin/trellis && chmod 0755 /usr/local/bin/trellis
COPY --from=build /src/package.json /app/package.json
COPY --from=build /src/dist /app/dist
COPY --from=build /src/node_modules /app/node_modules
ENV NODE_ENV=production
WORKDIR /app
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/trellis"]
CMD ["agent", "--proxy-type", "grpc"]
