#!/bin/sh
# busybox_rootfs.sh DIR: a hermetic image root from Debian's busybox-static: /bin/busybox, a link
# per applet, /etc/passwd and /etc/group (root, nobody; Debian's busybox has no adduser/addgroup,
# so builds add users by writing these files), /tmp, /root, /home, /var.
set -eu
dir=$1
bb=${BUSYBOX:-/bin/busybox}
mkdir -p "$dir/bin" "$dir/usr/bin" "$dir/sbin" "$dir/usr/sbin" "$dir/etc" "$dir/root" \
  "$dir/home" "$dir/var" "$dir/tmp"
chmod 1777 "$dir/tmp"
chmod 0700 "$dir/root"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list-full); do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$dir/$(dirname "$applet")"
  ln -sf /bin/busybox "$dir/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
