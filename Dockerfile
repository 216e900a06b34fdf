# Targets:
#   runtime (default)  `api` (default command) and `workers`; `api migrate`, `api demo-data`
#   stand-in           the local stand-in for Google and Twilio, for development only

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# SQL is checked against the committed .sqlx data; no database is needed to build.
ENV SQLX_OFFLINE=true
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p api -p workers -p stand-in \
    && cp target/release/api target/release/workers target/release/stand-in /usr/local/bin/

FROM debian:bookworm-slim AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 bms
USER bms
ENV LOG_FORMAT=json

FROM base AS stand-in
COPY --from=build /usr/local/bin/stand-in /usr/local/bin/
ENV STAND_IN_ADDR=0.0.0.0:9090
EXPOSE 9090
CMD ["stand-in"]

FROM base AS runtime
COPY --from=build /usr/local/bin/api /usr/local/bin/workers /usr/local/bin/
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
CMD ["api"]
