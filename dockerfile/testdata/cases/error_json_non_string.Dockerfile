FROM alpine
RUN [1, 2]
