# syntax=docker/dockerfile:1
#
# Build:  docker build -t tributary .
# Run:    docker run -p 8080:8080 -e DATABASE_URL=postgres://... tributary
# See docker-compose.yml for a ready-made stack with PostgreSQL.

ARG RUST_VERSION=1

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

# build.rs runs `npm ci` in graphiql/ to embed the GraphiQL assets; without
# npm the binary would ship a notice instead of GraphiQL.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nodejs \
        npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The cargo registry, the npm cache and target/ live in BuildKit cache mounts,
# so a rebuild after a source change only recompiles what changed. target/ is
# not part of the image layer, hence the copy out of it. build.rs only warns
# when `npm ci` fails, so the image build checks that the assets were installed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/root/.npm \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin tributary \
    && test -f graphiql/node_modules/graphiql/graphiql.min.js \
    && cp target/release/tributary /usr/local/bin/tributary

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# curl is only here for the HEALTHCHECK below (a few MB): the image has no
# other HTTP client, and a health check defined here also covers plain
# `docker run`, not only docker-compose.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 tributary \
    && useradd --uid 10001 --gid tributary \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin tributary \
    && mkdir -p /app \
    && chown tributary:tributary /app

WORKDIR /app

COPY --from=builder /usr/local/bin/tributary /usr/local/bin/tributary
# Provider definitions stay root-owned: the server only reads them.
COPY providers/ /app/providers/

ENV TRIBUTARY_LISTEN=0.0.0.0:8080 \
    TRIBUTARY_PROVIDERS_DIR=/app/providers

EXPOSE 8080

# Numeric (the tributary user) so orchestrators can verify it is non-root.
USER 10001:10001

# Liveness only (/healthz); /readyz also depends on the database. The port is
# taken from TRIBUTARY_LISTEN so overriding the listener keeps this working.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${TRIBUTARY_LISTEN##*:}/healthz" || exit 1

ENTRYPOINT ["tributary"]
CMD ["serve"]
