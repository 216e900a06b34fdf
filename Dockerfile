# One image, two entry points: `api` (default) and `workers`. `api migrate` and
# `api demo-data` run the one-off tasks.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# SQL is checked against the committed .sqlx data; no database is needed to build.
ENV SQLX_OFFLINE=true
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p api -p workers \
    && cp target/release/api target/release/workers /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 bms
COPY --from=build /usr/local/bin/api /usr/local/bin/workers /usr/local/bin/
USER bms
ENV HOST=0.0.0.0 PORT=8080 LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
CMD ["api"]
