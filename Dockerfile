# The s3-connector worker image:
#   docker build -t s3-connector .
#   docker run -v "$PWD/config.yml:/config/config.yml:ro" -v s3c-data:/data -p 9464:9464 s3-connector
#
# Stage `build` compiles with cargo build --release --locked. The dependencies are compiled
# first, from Cargo.toml and Cargo.lock alone with a stub crate, so that layer is cached until
# the manifest or the lock file changes; a source change rebuilds only this crate.
# Stage `rootfs` gathers what the binary needs at run time: the shared libraries `ldd` names
# (glibc, libm, libgcc_s), Debian's CA certificates (for HTTPS to S3 and OpenSearch), an
# /etc/passwd with the non-root user 10001, and /data owned by that user.
# The image is `scratch` with that tree: no shell, no package manager (README, section Docker,
# has the sizes that decided it). scripts/image-test builds and tests it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Cargo reads every target Cargo.toml declares, so the stub crate needs a file for each: src/
# and the [[bench]] (benches/ is not in the build context; the release build never compiles it,
# so its stub stays for the real build below).
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/extraction.rs \
    && echo 'fn main() {}' > benches/inventory.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
# The copied files may be older than the stub's build: touch them so cargo rebuilds the crate.
# Compressing the debug sections keeps the line tables of the release profile (file:line in
# panic backtraces) at a third of their size: the binary shrinks from 219 MB to 76 MB.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && objcopy --compress-debug-sections=zlib target/release/s3-connector /usr/local/bin/s3-connector

FROM debian:${DEBIAN_RELEASE}-slim AS rootfs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ca-certificates unpinned on purpose: the newest certificates of the release are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /rootfs/etc/ssl/certs /rootfs/config /rootfs/data /rootfs/tmp \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && cp /etc/nsswitch.conf /rootfs/etc/ \
    && echo 's3c:x:10001:10001:s3-connector:/nonexistent:/usr/sbin/nologin' > /rootfs/etc/passwd \
    && echo 's3c:x:10001:' > /rootfs/etc/group \
    && chown 10001:10001 /rootfs/data \
    && chmod 1777 /rootfs/tmp
COPY --from=build /usr/local/bin/s3-connector /rootfs/usr/local/bin/s3-connector
# The libraries at the paths the binary looks for them (its interpreter, /lib64/ld-linux-*).
RUN ldd /rootfs/usr/local/bin/s3-connector | grep -o '/[^ ]*' | sort -u \
    | xargs -I{} cp --parents --dereference {} /rootfs

FROM scratch
COPY --from=rootfs /rootfs /
# The config's default paths ./data/index and ./data/state resolve to the /data volume.
WORKDIR /
VOLUME /data
# JSON logs, and the HTTP listener on every interface so that -p 9464:9464 reaches it
# (S3C_LISTEN overrides `listen` in the config).
ENV S3C_LOG_FORMAT=json \
    S3C_LISTEN=0.0.0.0:9464
EXPOSE 9464
USER 10001:10001
# `s3-connector healthcheck` GETs /healthz on S3C_LISTEN: no curl (and no shell) needed.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["s3-connector", "healthcheck"]
ENTRYPOINT ["s3-connector"]
CMD ["run", "--config", "/config/config.yml"]
