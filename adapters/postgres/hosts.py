"""The hosts of a PostgreSQL URL, as libpq lists them, and the order to try them in."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit


def hosts_of(dsn: str) -> list[tuple[str, int | None]]:
    """The URL's hosts in libpq's order, each with its port when the URL gives one:
    the authority's list (`host1:5432,host2`), else the `host` parameter's, with
    the `port` parameter's ports."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    listed = parts.netloc.rpartition("@")[2]
    if listed:
        specs = [unquote(spec) for spec in listed.split(",")]
    else:
        specs = query["host"][-1].split(",") if "host" in query else []
    ports = query["port"][-1].split(",") if "port" in query else []
    hosts: list[tuple[str, int | None]] = []
    for index, spec in enumerate(specs):
        if spec.startswith("/"):  # a unix socket's folder
            host, port = spec, ""
        elif spec.startswith("["):  # [IPv6]:port
            host, _, rest = spec[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = spec.partition(":")
        if not port and ports:
            port = ports[index] if len(ports) == len(specs) else ports[0]
        hosts.append((host, int(port) if port else None))
    return hosts


class Hosts:
    """A URL's hosts in the order to try them. When the URL asks for the primary
    (`target_session_attrs=read-write` or `primary`), the host that took the last
    connection comes first, then the others in the URL's order: after a failover
    whose old primary is gone without a word, only the first connection waits out
    its timeout, and the next ones go to the new primary at once. Otherwise any host
    that answers takes a connection, so none is preferred for having answered (it
    may be a standby): the URL's order, as libpq's.

    A host whose last connect timed out goes last, whatever the URL's order, until it
    takes a connection again: while a failover is under way (the old primary gone
    silent, its standby not promoted yet) every connect would otherwise spend its
    timeout on the silent host before asking the others, and the first connect after
    the promotion as well."""

    def __init__(self, dsn: str) -> None:
        self.listed = hosts_of(dsn)
        wanted = parse_qs(urlsplit(dsn).query).get("target_session_attrs")
        wanted_name = wanted[-1] if wanted else os.environ.get("PGTARGETSESSIONATTRS", "")
        self._sticky = wanted_name in ("read-write", "primary")
        self._took: tuple[str, int | None] | None = None
        self._silent: list[tuple[str, int | None]] = []  # the latest to time out last

    def in_turn(self) -> list[tuple[str, int | None]]:
        took, silent = self._took, self._silent
        if took is None and not silent:
            return self.listed
        rest = [h for h in self.listed if h != took and h not in silent]
        return [*([took] if took is not None else []), *rest, *silent]

    def took(self, host: tuple[str, int | None]) -> None:
        if host in self._silent:
            self._silent.remove(host)
        if self._sticky:
            self._took = host

    def timed_out(self, host: tuple[str, int | None]) -> None:
        if self._took == host:
            self._took = None
        if host in self._silent:
            self._silent.remove(host)
        self._silent.append(host)
