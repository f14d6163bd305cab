FROM alpine
COPY --chmod=755 --owner=root a /b
