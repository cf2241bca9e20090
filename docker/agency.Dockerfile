# lottery-agency image. Build from the repository root:
#   docker build [--network host] -f docker/agency.Dockerfile -t lottery-agency .
# Mount your conf/client.toml on /etc/lottery/client.toml and the agency's
# dataset under /srv/lottery/dataset/ (the configured path is relative to the
# working directory /srv/lottery). Set CLI_ID to the agency id. The shipped
# config reads ca.pem, agency-<id>.pem and agency-<id>.key from
# /etc/lottery/tls: mount this agency's, and only this agency's, there.

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
# libfmt9, libtomlplusplus3, libssl3: the shared libraries the binary needs
# beyond libc. tools/validate-echo-server.sh runs the echo check
# (docker/echo-check.sh, lottery-agency itself) in a throwaway container.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfmt9 libtomlplusplus3 libssl3 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --user-group --no-create-home --uid 10002 --home-dir /srv/lottery --shell /usr/sbin/nologin agency \
 && install -d -o agency -g agency -m 0755 /srv/lottery /srv/lottery/dataset
COPY --from=build /build/src/lottery-agency /usr/local/bin/lottery-agency
COPY docker/echo-check.sh /usr/local/bin/lottery-echo-check
COPY conf/client.toml /etc/lottery/client.toml

# --- final image: the runtime stage as one layer -----------------------------
# A base image made with debootstrap into a mktemp directory (as the CI
# machines' local engine makes debian:bookworm-slim) has / at mode 0700, and a
# RUN chmod of / does not survive into the layer, so the non-root user could
# not reach its own binary. Copying the finished tree onto scratch gives / its
# usual 0755 on every engine; on a stock base image it only costs one copy.
FROM scratch
COPY --from=runtime / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER agency
WORKDIR /srv/lottery
ENTRYPOINT ["/usr/local/bin/lottery-agency"]
CMD ["--config", "/etc/lottery/client.toml"]
