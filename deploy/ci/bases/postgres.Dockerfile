# CI stand-in for postgres:15: Debian's postgresql-15 with an entrypoint that honours
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and /docker-entrypoint-initdb.d as
# the official image does (build.sh).
FROM balance-ci/bookworm
COPY mirror /tmp/mirror
RUN echo "deb $(cat /tmp/mirror) bookworm main" > /etc/apt/sources.list \
    && apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /tmp/mirror \
    && mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql \
    && chown postgres:postgres /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 5432
# As the official image: SIGINT is PostgreSQL's fast shutdown (sessions ended at
# once); SIGTERM's smart shutdown waits for every client to leave, and a pool never
# does, so `docker stop` would end in SIGKILL.
STOPSIGNAL SIGINT
CMD ["postgres"]
