# finhook in a container: `docker build -t finhook .` then see docs/deploy.md.
# Two stages: the release build on the Rust toolchain the project is built with, then a
# small Debian runtime with the one binary, run as a user without privileges.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p finhook \
    && strip target/release/finhook

FROM debian:bookworm-slim
# curl for the health check only: finhook carries its own TLS roots (webpki-roots) and
# needs nothing else from the system. Debian's stable pins are the point of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/finhook --create-home finhook
COPY --from=build /src/target/release/finhook /usr/local/bin/finhook
USER finhook
WORKDIR /var/lib/finhook
# Listen on every interface of the container; the embedded store in the volume by default.
ENV FINHOOK_LISTEN=0.0.0.0:7700 \
    FINHOOK_DATABASE=sqlite:///var/lib/finhook/finhook.db
VOLUME ["/var/lib/finhook"]
EXPOSE 7700
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:7700/healthz"]
ENTRYPOINT ["finhook"]
CMD ["serve"]
