# The fault proxy (crates/fault-proxy): one statically linked binary, nothing else.
# Built by docker/build-images.sh from a context it stages (no registry needed).
# Routes come from FAULT_PROXY_ROUTES (name=LISTEN=UPSTREAM, comma-separated)
# or POST /routes; listen on 0.0.0.0 inside the container.
FROM scratch
COPY rootfs/ /
USER 65534:65534
EXPOSE 8474
ENV FAULT_PROXY_API=0.0.0.0:8474
ENTRYPOINT ["/usr/local/bin/fault-proxy"]
