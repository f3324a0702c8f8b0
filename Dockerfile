# syntax=docker/dockerfile:1
# Multi-stage build of the `elt` binary. DuckDB is compiled from source here (feature
# `bundled`), so the image does not depend on the prebuilt library the dev setup fetches.
# Build: docker build -t elt .
# Run:   docker run --rm -v "$PWD:/work" elt sync --connection demo

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p elt-runner --features bundled --bin elt \
 && strip target/release/elt

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /work --shell /usr/sbin/nologin elt \
 && mkdir -p /work && chown elt:elt /work
COPY --from=build /src/target/release/elt /usr/local/bin/elt
USER elt
WORKDIR /work
# The project (elt.toml) and the DuckDB files live in the mounted /work.
VOLUME ["/work"]
ENV ELT_CONFIG=/work/elt.toml
ENTRYPOINT ["elt"]
CMD ["--help"]
