FROM alpine
# a comment
RUN apk add --no-cache \
    # comments inside a continuation are dropped
    curl \

    git
RUN echo "keep   \
   inner spacing"
   run   echo lowercase and indented
