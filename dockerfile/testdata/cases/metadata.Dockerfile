FROM debian:12 AS base
MAINTAINER Jane Doe <jane@example.com>
LABEL org.opencontainers.image.title="demo" version=1.0 "with space"="yes"
LABEL legacy form value
EXPOSE 80 443/tcp 53/udp
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGQUIT
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -fsS http://localhost/ || exit 1
HEALTHCHECK NONE
USER 1000:1000
WORKDIR /srv
WORKDIR app
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["serve", "--port=80"]
ONBUILD COPY . /srv/app
ONBUILD RUN make -C /srv/app
