#!/usr/bin/env bash
# The demo: installs what is missing, builds `slipway`, makes a hermetic base image from
# busybox-static, and builds the supplementary-groups Dockerfile on it -- no network, no daemon.
# Then it builds FROM the new image to show what `id` says inside it, and lets umoci and skopeo
# read the outputs.
#   tools/demo.sh            (as root: RUN steps chroot and switch users)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
bazel build //executor:slipway //integration:mkimage >/dev/null 2>&1 ||
  bazel build //executor:slipway //integration:mkimage
slipway=$PWD/bazel-bin/executor/slipway

demo=$(mktemp -d /var/tmp/slipway-demo-XXXXXX)
out=/var/tmp/slipway-demo-out
rm -rf "$out" && mkdir -p "$out"
trap 'rm -rf "$demo"' EXIT

echo "== a hermetic base image from busybox-static (OCI layout)"
integration/busybox_rootfs.sh "$demo/rootfs"
bazel-bin/integration/mkimage --rootfs "$demo/rootfs" --oci-layout "$demo/busybox" --tag latest

mkdir -p "$demo/context"
cat > "$demo/context/Dockerfile" <<'DOCKERFILE'
FROM busybox
# Debian's busybox-static has no addgroup/adduser: write the databases like they would.
RUN echo 'bar:x:20000:foo' >> /etc/group
RUN echo 'foo:x:10000:' >> /etc/group
RUN echo 'foo:x:10000:10000:Foo user:/home/foo:/bin/sh' >> /etc/passwd && mkdir -p /home/foo && chown foo:foo /home/foo
RUN id foo
USER foo
RUN id
DOCKERFILE
echo
echo "== slipway builds it (Dockerfile in $demo/context)"
cat "$demo/context/Dockerfile" | sed 's/^/   | /'
"$slipway" --context "dir://$demo/context" --image-source "busybox=oci-layout:$demo/busybox" \
  --destination demo/groups:latest --no-push \
  --oci-layout-path "$out/oci" --tar-path "$out/image.tar" --digest-file "$out/digest" \
  --work-dir "$demo"

echo
echo "== the image went to:"
echo "   OCI layout      $out/oci   (tag latest)"
echo "   docker-archive  $out/image.tar   (demo/groups:latest; docker load / podman load)"
echo "   digest          $(cat "$out/digest")"

echo
echo "== what id says inside the built image (a build FROM it, as its USER foo):"
mkdir -p "$demo/inside"
printf 'FROM demo/groups\nRUN id\n' > "$demo/inside/Dockerfile"
"$slipway" --context "$demo/inside" --image-source "demo/groups=oci-layout:$out/oci" \
  --no-push --work-dir "$demo" 2>&1 | grep -E '^#[0-9]+ [0-9.]+ ' | sed 's/^#[0-9]* [0-9.]* /   /'

echo
echo "== read back by the tools users have:"
skopeo inspect "oci:$out/oci:latest" | grep -E '"(Digest|Architecture)"' | sed 's/^ */   skopeo: /'
skopeo inspect --config "docker-archive:$out/image.tar" | grep -E '"User"' | sed 's/^ */   skopeo (docker-archive): /'
umoci unpack --image "$out/oci:latest" "$demo/bundle" >/dev/null
echo "   umoci unpack: /etc/group ends with: $(tail -n 2 "$demo/bundle/rootfs/etc/group" | tr '\n' ' ')"
