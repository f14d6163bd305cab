# syntax=docker/dockerfile:1
FROM alpine
ENV NAME=world
RUN <<EOF
echo "hello $NAME"
EOF
RUN <<'SCRIPT'
#!/bin/sh
set -e
echo script
SCRIPT
RUN cat <<A >/a && cat <<-B >/b
one $NAME
A
	two
	B
COPY <<greeting.txt <<"raw.txt" /srv/
Hello, $NAME!
greeting.txt
Not expanded: $NAME
raw.txt
RUN 3<<FD cat /proc/self/fd/3
fd three
FD
