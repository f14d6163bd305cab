FROM alpine
WORKDIR ${B:?B must be set}
