# lottery-agency image. Build from the repository root:
#   docker build [--network host] -f docker/agency.Dockerfile -t lottery-agency .
# Mount your conf/client.toml on /etc/lottery/client.toml and the agency's
# dataset under /srv/lottery/dataset/ (the configured path is relative to the
# working directory /srv/lottery). Set CLI_ID to the agency id.

# --- build stage: identical in both Dockerfiles so the layer cache is shared --
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ meson ninja-build pkg-config libfmt-dev libtomlplusplus-dev \
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
 && ninja -C /build src/lottery-server src/lottery-agency \
 && strip /build/src/lottery-server /build/src/lottery-agency

# --- runtime stage ---------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# libfmt9, libtomlplusplus3: the shared libraries the binary needs beyond libc.
# netcat-openbsd: tools/validate-echo-server.sh runs the echo check in a
# throwaway container of this image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfmt9 libtomlplusplus3 netcat-openbsd \
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
