# lottery-server image. Build from the repository root:
#   docker build [--network host] -f docker/server.Dockerfile -t lottery-server .
# The configuration is not part of the image's contract: mount your
# conf/server.toml on /etc/lottery/server.toml (the copy baked in is only the
# default). Bets go to /var/lib/lottery (mount a volume there). The shipped
# config reads its certificates from /etc/lottery/tls (server.pem,
# server.key, ca.pem, crl.pem): mount them there (tools/gen_compose.py does).

# --- build stage: identical in both Dockerfiles so the layer cache is shared --
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ meson ninja-build pkg-config libfmt-dev libtomlplusplus-dev libssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY meson.build meson_options.txt ./
COPY src/ src/
# conf/ and docs/man/ hold what `meson install` would install (configs,
# systemd units, manual pages); meson needs them to configure. The image
# build installs nothing from them.
COPY conf/ conf/
COPY docs/man/ docs/man/
# The service-manager protocol is irrelevant in a container; build the
# binary without libsystemd so the runtime stage needs no more libraries.
RUN meson setup /build -Dtests=false -Dbuildtype=release -Dlibsystemd=disabled \
 && ninja -C /build src/lottery-server src/lottery-agency src/lotteryctl \
 && strip /build/src/lottery-server /build/src/lottery-agency /build/src/lotteryctl

# --- runtime stage ---------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# libfmt9, libtomlplusplus3, libssl3, libpq5 (the PostgreSQL backend's
# client): the shared libraries the binaries need beyond libc. No netcat: the echo health check (docker/echo-check.sh) is
# lottery-agency in echo mode, which speaks TLS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfmt9 libtomlplusplus3 libssl3 libpq5 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --user-group --no-create-home --uid 10001 --home-dir /var/lib/lottery --shell /usr/sbin/nologin lottery \
 && install -d -o lottery -g lottery -m 0750 /var/lib/lottery
COPY --from=build /build/src/lottery-server /usr/local/bin/lottery-server
COPY --from=build /build/src/lottery-agency /usr/local/bin/lottery-agency
# The operator's command, run in the server's container (docs/DEPLOY.md):
#   docker exec <server container> lotteryctl status
COPY --from=build /build/src/lotteryctl /usr/local/bin/lotteryctl
COPY docker/echo-check.sh /usr/local/bin/lottery-echo-check
COPY conf/server.toml /etc/lottery/server.toml

# --- final image: the runtime stage as one layer -----------------------------
# A base image made with debootstrap into a mktemp directory (as the CI
# machines' local engine makes debian:bookworm-slim) has / at mode 0700, and a
# RUN chmod of / does not survive into the layer, so the non-root user could
# not reach its own binary. Copying the finished tree onto scratch gives / its
# usual 0755 on every engine; on a stock base image it only costs one copy.
FROM scratch
COPY --from=runtime / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER lottery
WORKDIR /var/lib/lottery
EXPOSE 12345
# PID 1: the server blocks SIGTERM/SIGINT/SIGCHLD into a signalfd, so it stops
# gracefully on `docker stop` and reaps its workers itself.
ENTRYPOINT ["/usr/local/bin/lottery-server"]
CMD ["--config", "/etc/lottery/server.toml"]
