# Redis from this machine's Debian redis-server and redis-cli (the latter for
# the healthcheck), with exactly the shared libraries `ldd` lists for them.
# Built by docker/build-images.sh from a context it stages (no registry needed).
# Like the stock image, the command starts with `redis-server`, so compose
# files work unchanged with either.
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 data/ /data/
ENV PATH=/usr/local/bin:/usr/bin:/bin
USER 999:999
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
