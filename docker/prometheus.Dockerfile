# Prometheus from the Debian package (bookworm: 2.42.0, the version the compose file pins) on the
# debootstrap base, for machines without a registry (the public image is prom/prometheus).
# Context: the package extracted with dpkg-deb -x (scripts/build-images.sh prepares it).
# Same entrypoint and working directory as the public image, so compose's `command:` fits both.
ARG BASE_IMAGE=drill-base:bookworm
FROM ${BASE_IMAGE}
COPY usr/bin/prometheus usr/bin/promtool /bin/
COPY usr/share/prometheus/ /usr/share/prometheus/
RUN mkdir -p /prometheus /etc/prometheus
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
