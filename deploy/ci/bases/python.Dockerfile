# CI stand-in for python:3.11-slim: Debian bookworm's Python 3.11 (build.sh).
FROM balance-ci/bookworm
COPY mirror /tmp/mirror
COPY host-ca-certificates.crt /usr/local/share/ca-certificates/host.crt
RUN echo "deb $(cat /tmp/mirror) bookworm main" > /etc/apt/sources.list \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       python3 python3-pip python3-venv ca-certificates \
    && update-ca-certificates >/dev/null \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && rm -rf /var/lib/apt/lists/* /tmp/mirror
# pip and uv trust what the host trusts; Debian's pip installs system-wide here, as
# the official image's does.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    LANG=C.UTF-8
CMD ["python3"]
