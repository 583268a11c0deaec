# PyTake server image.
#
# NOT EXERCISED HERE: the development machines run no Docker engine, so this
# file is kept to the steps the tests do run (scripts/deps.sh, make build,
# pytake migrate/serve). Build and run:
#   docker build -t pytake .
#   docker run --rm -p 8000:8000 -e ENVIRONMENT=development pytake
# or the whole stack (PostgreSQL + Redis): docker compose up (docker-compose.yml).

# ---- build: the same packages and build as `make build` --------------------
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
# as root, deps.sh installs the Debian packages of the build (apt-get)
RUN scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build && make build BUILD_DIR=build

# ---- run: the shared libraries the binary links, nothing else -------------
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libmicrohttpd12 \
      libjansson4 libpq5 libsqlite3-0 libhiredis0.14 libcurl4 libssl3 libsodium23 \
      postgresql-client curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/pytake --create-home pytake
COPY --from=build /src/build/pytake /usr/local/bin/pytake
USER pytake
WORKDIR /var/lib/pytake
# Listen on every interface inside the container; the rest of the
# configuration comes from the environment (see README "Configuration").
ENV BIND_ADDRESS=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/var/lib/pytake/data \
    DATABASE_URL=sqlite:/var/lib/pytake/data/pytake.db \
    LOG_FORMAT=json
VOLUME ["/var/lib/pytake/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8000/ready || exit 1
CMD ["pytake", "serve"]
