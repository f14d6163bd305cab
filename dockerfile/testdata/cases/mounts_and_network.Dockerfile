FROM golang:1.22 AS build
ARG CACHE=/root/.cache/go-build
RUN --mount=type=cache,target=$CACHE,sharing=locked \
    --mount=type=bind,target=/src,rw \
    --mount=type=secret,id=netrc,target=/root/.netrc,required=true \
    --mount=type=tmpfs,target=/tmp,size=67108864 \
    --network=none \
    go build -o /out/app ./...
FROM alpine
RUN --mount=type=bind,from=build,source=/out,target=/in cp /in/app /usr/local/bin/
RUN --security=insecure --network=host true
