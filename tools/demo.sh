#!/usr/bin/env bash
# The demo: installs what is missing, builds slipway-id, makes a small image root from
# busybox-static with its own /etc/passwd and /etc/group, and shows who each USER is inside it --
# resolved from the image's files, never the host's. (The full `slipway` build arrives with the
# executor; see README.md.)
#   tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
bazel build //userdb:slipway-id //dockerfile:dockerfile-plan >/dev/null 2>&1 ||
  bazel build //userdb:slipway-id //dockerfile:dockerfile-plan
cli=bazel-bin/userdb/slipway-id

root=$(mktemp -d /tmp/slipway-demo-XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/srv"
cp /bin/busybox "$root/bin/busybox"
cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:10000:10000:App:/home/app:/bin/sh
worker:x:10001:10001::/srv/worker:/bin/sh
PW
cat > "$root/etc/group" <<'GR'
root:x:0:root
app:x:10000:
worker:x:10001:
staff:x:20000:app,worker
audio:x:29:app
GR
# A hostile image could point its group file at the host's: it still resolves inside the root.
mv "$root/etc/group" "$root/srv/group"
ln -s /../../../../srv/group "$root/etc/group"

echo "image root: $root (busybox, /etc/group -> /../../../../srv/group)"
echo "Slipway's answer for each USER, from the image's own files:"
for spec in app worker app:staff 10001 4242 4242:audio ""; do
  printf '  USER %-10s -> %s\n' "${spec:-\"\"}" "$("$cli" --root "$root" "$spec")"
done
printf '  COPY --chown=%-4s -> %s\n' 4242 "$("$cli" --root "$root" --chown 4242)"
printf '  USER %-10s -> %s\n' nobody "$("$cli" --root "$root" nobody 2>&1 || true)"

# Cross-check against the image's own busybox `id`, run inside the root (needs root for chroot).
if [ "$(id -u)" -eq 0 ]; then
  echo "busybox id inside the image, for comparison:"
  for user in app worker; do
    printf '  chroot id %-6s -> %s\n' "$user" "$(chroot "$root" /bin/busybox id "$user")"
  done
fi

echo "a malformed line is skipped with a warning naming the file and line:"
echo "garbage line" >> "$root/etc/passwd"
"$cli" --root "$root" app 2>&1 >/dev/null | sed 's/^/  /'

echo
echo "The plan Slipway makes of a multi-stage Dockerfile (build arg VERSION=3.20, target release):"
cat > "$root/Dockerfile" <<'DOCKERFILE'
ARG VERSION=3.19
FROM alpine:${VERSION} AS build
ARG VERSION
RUN --mount=type=cache,target=/root/.cache <<EOF
echo building $VERSION
EOF
FROM scratch AS release
COPY --from=build --chown=app:staff /out/ /app/
USER app:staff
FROM alpine AS unused
DOCKERFILE
bazel-bin/dockerfile/dockerfile-plan "$root/Dockerfile" --build-arg VERSION=3.20 --target release |
  sed "s|$root/||; s/^/  /"
