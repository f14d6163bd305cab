FROM alpine AS one
FROM alpine AS ONE
