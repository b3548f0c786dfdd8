# Dockerfile.app - outbox-app (HTTP API) and outbox-migrate + migrations/.
#
# Dockerfile.app, Dockerfile.relay and Dockerfile.worker are identical from
# `ARG BASE` down to the "per image" line (scripts/containers.sh checks
# it): the builder stage and the runtime base are the same instructions on
# the same inputs, so the layer cache builds them once for the three images
# (the toolchain install and `make build` run once, the runtime libraries are
# installed once).  Below that line each file copies its own binary.

# The base of both stages: the official image by default (docker compose,
# any machine with a registry); scripts/containers.sh, offline, passes its
# own, made with mmdebstrap (--build-arg BASE=localhost/outbox-base:bookworm).
ARG BASE=debian:bookworm-slim

# ---- builder: the project's own dependency script and Makefile ----
FROM ${BASE} AS build
LABEL outbox.stage=build
WORKDIR /src
# The -dev package list lives in one place, scripts/deps.sh (group "build":
# build-essential pkg-config libmicrohttpd-dev default-libmysqlclient-dev
# librabbitmq-dev libjansson-dev uuid-dev, check, libcurl, libunistring-dev;
# no recommends).
COPY scripts/deps.sh scripts/lib.sh scripts/
RUN bash scripts/deps.sh build
# The whole tree minus .dockerignore (git, build output, servers' data,
# tests, the container files themselves): what `make build` may need.
COPY . .
RUN make build

# ---- runtime base: shared libraries only, a fixed non-root user ----
FROM ${BASE}
LABEL outbox.stage=runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libmariadb3 librabbitmq4 libjansson4 libuuid1 \
      libunistring2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 outbox \
 && useradd --system --uid 10001 --gid outbox --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin outbox
STOPSIGNAL SIGTERM
USER 10001:10001

# ---- per image: outbox-app ----
COPY --from=build /src/build/release/bin/outbox-app \
     /src/build/release/bin/outbox-migrate /usr/local/bin/
# The one-shot migration service of docker-compose.yml runs this image with
# entrypoint outbox-migrate: the schema ships with the app that needs it.
COPY migrations/*.sql /usr/share/outbox/migrations/
ENV MIGRATIONS_DIR=/usr/share/outbox/migrations
EXPOSE 3000
# Liveness: GET /healthz on APP_PORT answers 200 (bash's /dev/tcp: no HTTP
# client in the image).  Not /readyz: a database outage is something the
# app rides out, not a reason to call the container unhealthy.  Every probe
# is an access-log line, hence 30 s (Docker's default interval).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${APP_PORT:-3000} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r -t 2 v s _ <&3 && [ \"$s\" = 200 ]"]
ENTRYPOINT ["/usr/local/bin/outbox-app"]
