# CI stand-in for rabbitmq:3: Debian's rabbitmq-server; the entrypoint makes
# RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS the first user, as the official
# image does (build.sh).
FROM balance-ci/bookworm
COPY mirror /tmp/mirror
RUN echo "deb $(cat /tmp/mirror) bookworm main" > /etc/apt/sources.list \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /tmp/mirror
# The server and `docker exec ... rabbitmq-diagnostics` share one Erlang cookie.
ENV HOME=/var/lib/rabbitmq LANG=C.UTF-8
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 5672
CMD ["rabbitmq-server"]
