# syntax=docker/dockerfile:1
#
# One image for every Postline stage; the command selects it:
#   docker run postline ingest | renderer | dispatcher | scheduler | analytics | topics create | migrate
#
# Stages: `build` compiles the TypeScript (tsc, tsconfig.build.json) to dist/; `deps` installs
# production dependencies only; `runtime` holds those two and services/postline.mjs, which runs
# dist/services/cli.js when it exists (it does here) — no TypeScript tooling at run time.
#
# Debian slim rather than Alpine: the native modules (@node-rs/crc32, and chdb when kept) are
# built for glibc.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY services ./services
RUN npx tsc -p tsconfig.build.json
# Data files the compiled code reads next to itself: the shipped traffic-shaping rules and the
# bounce rule table.
RUN cp services/dispatcher/shaping/default-shaping.yaml dist/services/dispatcher/shaping/ \
 && cp shared/bounces/bounce-rules.yaml dist/shared/bounces/

FROM node:${NODE_VERSION}-bookworm-slim AS deps
# The embedded ClickHouse engine (chdb, ~540 MB) only serves `postline start` and an analytics
# stage without POSTLINE_ANALYTICS_CLICKHOUSE_URL. Deployments use a ClickHouse server, so it is
# left out unless built with --build-arg EMBEDDED_CLICKHOUSE=true.
ARG EMBEDDED_CLICKHOUSE=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && if [ "$EMBEDDED_CLICKHOUSE" != "true" ]; then rm -rf node_modules/chdb node_modules/@chdb; fi \
 && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
# The same flags `postline start` gives its stages (shared/node-flags.ts says why).
ENV NODE_OPTIONS="--max-semi-space-size=64"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY services/postline.mjs ./services/postline.mjs
# The image's own non-root user (uid 1000); nothing in /app is writable by it.
USER node
# 8080 send API (ingest), 8082 read API (analytics); both also serve /metrics /healthz /readyz.
# 9464 /metrics /healthz /readyz of the other stages (ops.port). 2525 SMTP of the inbound service.
EXPOSE 8080 8082 9464 2525
# PID 1 is node itself: every stage handles SIGTERM (drain, commit, exit) — see shared/lifecycle.ts.
ENTRYPOINT ["node", "services/postline.mjs"]
CMD ["--help"]
