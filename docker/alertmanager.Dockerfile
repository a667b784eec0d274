# Alertmanager from the Debian package prometheus-alertmanager (bookworm: 0.25.0, the version the
# compose file pins) on the debootstrap base, for machines without a registry (the public image is
# prom/alertmanager). Context: the package extracted with dpkg-deb -x (scripts/build-images.sh).
ARG BASE_IMAGE=drill-base:bookworm
FROM ${BASE_IMAGE}
COPY usr/bin/prometheus-alertmanager /bin/alertmanager
COPY usr/bin/amtool /bin/amtool
COPY usr/share/prometheus/alertmanager/ /usr/share/prometheus/alertmanager/
RUN mkdir -p /alertmanager /etc/alertmanager
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
