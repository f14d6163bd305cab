ARG REGISTRY=docker.io
ARG VERSION=3.19
FROM ${REGISTRY}/library/alpine:${VERSION} AS base
ARG VERSION
ENV V=$VERSION
FROM base AS build
ARG TARGETARCH
RUN echo building for $TARGETARCH
COPY --chown=1000:1000 --chmod=0644 --link --exclude=*.md --exclude=test/ . /src/
FROM scratch AS release
COPY --from=build /src /
COPY --from=base --parents /etc/./apk/** /
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/tool.tar.gz /opt/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.12.0 /buildkit
ADD --unpack=true archive.tar /x/
FROM release
