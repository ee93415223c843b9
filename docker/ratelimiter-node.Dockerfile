# The rate limiter node: one statically linked binary, nothing else.
# Built by docker/build-images.sh from a context it stages (no registry needed).
FROM scratch
COPY rootfs/ /
USER 65534:65534
EXPOSE 8000
ENV RATELIMITER_LISTEN=0.0.0.0:8000
ENTRYPOINT ["/usr/local/bin/ratelimiter-node"]
