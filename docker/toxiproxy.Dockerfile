# Toxiproxy server around the binary scripts/setup.sh builds (.tools/bin/toxiproxy-server, v2.12.0),
# for machines without a registry (the public image is ghcr.io/shopify/toxiproxy). Context: a
# directory holding only that binary (scripts/build-images.sh prepares it). A static binary could
# live FROM scratch; the one `go install` builds links glibc, so the debootstrap base is used.
ARG BASE_IMAGE=drill-base:bookworm
FROM ${BASE_IMAGE}
COPY toxiproxy-server /toxiproxy
EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
