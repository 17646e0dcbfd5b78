"""`balance verify`: the ledger's invariants checked on the stored rows alone, in one
snapshot, without stopping the service.

The schema enforces what one row can say (a reserved balance never negative, an
available one within the credit limit, entries and transactions append-only). What
spans rows it cannot: that a transaction's entries sum to zero, that an account's
balances are the sum of its entries, that each entry's `balance_after` is the sum
of the entries before it, that the held money is the sum of the open reservations,
that each reservation was opened once and closed at most once, that revenue is
what was recognized, that the outbox's last event of a user shows the user's
balances, and that it holds an event of each movement of the user, in order. A
bug, a hand-made fix or a restore that broke one of these is found here, named,
with examples.

Read in one REPEATABLE READ, READ ONLY transaction: every batch commits whole, so
any snapshot holds every invariant, with movements going on. It reads every row
(sequential scans, and sorts of the entries): run it on a standby, where
its long snapshot holds nothing back on the primary.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from adapters.postgres.engine import ADMIN_CONNECT_TIMEOUT, libpq_url, open_connection
from adapters.postgres.revisions import behind, head_revision, known_revisions


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    """What holds, said as a fact."""
    sql: str
    """The rows that break it: a subject and what is wrong with it, as text."""


def _rubles(column: str) -> str:
    """SQL for a kopecks column as rubles text, sign and two decimals: -1.05."""
    return f"to_char({column} / 100.0, 'FM9999999999999999990.00')"


CHECKS = (
    Check(
        "every transaction's entries sum to zero",
        "SELECT 'transaction ' || transaction_id,"
        f" 'its entries sum to ' || {_rubles('sum(amount)')}"
        " FROM entries GROUP BY transaction_id HAVING sum(amount) <> 0",
    ),
    Check(
        "every entry belongs to a recorded transaction, and every transaction has entries",
        "SELECT 'transaction ' || e.transaction_id, 'has entries but is not recorded'"
        " FROM (SELECT DISTINCT transaction_id FROM entries) AS e"
        " WHERE NOT EXISTS (SELECT FROM transactions AS t WHERE t.id = e.transaction_id)"
        " UNION ALL"
        " SELECT 'transaction ' || t.id, 'is recorded with no entries' FROM transactions AS t"
        " WHERE NOT EXISTS (SELECT FROM entries AS e WHERE e.transaction_id = t.id)",
    ),
    Check(
        "every account's balances are the sums of its entries",
        "WITH sums AS (SELECT user_id,"
        "  coalesce(sum(amount) FILTER (WHERE account = 'available'), 0) AS available,"
        "  coalesce(sum(amount) FILTER (WHERE account = 'reserved'), 0) AS reserved"
        "  FROM entries WHERE user_id IS NOT NULL GROUP BY user_id)"
        " SELECT 'user ' || user_id, CASE WHEN a.user_id IS NULL THEN 'has entries but no account'"
        f"  ELSE 'available ' || {_rubles('a.available')} || ', reserved '"
        f"  || {_rubles('a.reserved')} || '; its entries sum to '"
        f"  || {_rubles('coalesce(s.available, 0)')} || ' and '"
        f"  || {_rubles('coalesce(s.reserved, 0)')} END"
        " FROM accounts AS a FULL JOIN sums AS s USING (user_id)"
        " WHERE a.user_id IS NULL OR a.available <> coalesce(s.available, 0)"
        "  OR a.reserved <> coalesce(s.reserved, 0)",
    ),
    Check(
        "every entry's balance_after is its account's balance after it",
        "SELECT 'entry ' || id, 'user ' || user_id || ' ' || account || ': balance_after '"
        f" || {_rubles('balance_after')} || ', the entries up to it sum to '"
        f" || {_rubles('running')}"
        " FROM (SELECT id, user_id, account, balance_after,"
        "  sum(amount) OVER (PARTITION BY user_id, account ORDER BY id) AS running"
        "  FROM entries WHERE user_id IS NOT NULL) AS e"
        " WHERE balance_after <> running",
    ),
    Check(
        "no available balance below its credit limit, no reserved balance below zero",
        "SELECT 'user ' || user_id, 'available ' || "
        f"{_rubles('available')} || ', reserved ' || {_rubles('reserved')}"
        f" || ', credit limit ' || {_rubles('greatest(credit_limit, tolerated_debt)')}"
        " FROM accounts"
        " WHERE available < -greatest(credit_limit, tolerated_debt) OR reserved < 0",
    ),
    Check(
        "every reserved balance is the sum of its open reservations",
        "SELECT 'user ' || user_id, 'reserved ' || "
        f"{_rubles('a.reserved')} || ', its open reservations sum to '"
        f" || {_rubles('coalesce(r.open, 0)')}"
        " FROM accounts AS a LEFT JOIN (SELECT user_id, sum(amount) AS open FROM reservations"
        "  WHERE status = 'reserved' GROUP BY user_id) AS r USING (user_id)"
        " WHERE a.reserved <> coalesce(r.open, 0)",
    ),
    Check(
        "every reservation was opened once and closed at most once, as its status says",
        "WITH moves AS (SELECT order_id,"
        "  count(*) FILTER (WHERE kind = 'reserve') AS reserves,"
        "  count(*) FILTER (WHERE kind = 'cancel') AS cancels,"
        "  count(*) FILTER (WHERE kind = 'recognize') AS recognitions,"
        "  count(*) FILTER (WHERE kind = 'expire') AS expiries"
        "  FROM transactions WHERE order_id IS NOT NULL GROUP BY order_id)"
        " SELECT 'order ' || order_id, CASE WHEN r.order_id IS NULL"
        "  THEN 'has transactions but no reservation'"
        "  ELSE r.status || ' after ' || coalesce(m.reserves, 0) || ' reserve(s), '"
        "  || coalesce(m.cancels, 0) || ' cancel(s), ' || coalesce(m.recognitions, 0)"
        "  || ' recognition(s), ' || coalesce(m.expiries, 0) || ' expiry(ies)' END"
        " FROM reservations AS r FULL JOIN moves AS m USING (order_id)"
        " WHERE r.order_id IS NULL OR coalesce(m.reserves, 0) <> 1"
        "  OR coalesce(m.cancels, 0) <> (r.status = 'cancelled')::int"
        "  OR coalesce(m.recognitions, 0) <> (r.status = 'recognized')::int"
        "  OR coalesce(m.expiries, 0) <> (r.status = 'expired')::int",
    ),
    Check(
        "every service's revenue is what its recognized reservations recognized",
        "WITH earned AS (SELECT service_id, sum(amount) AS revenue FROM entries"
        "  WHERE account = 'revenue' GROUP BY service_id),"
        " recognized AS (SELECT service_id, sum(recognized_amount) AS recognized"
        "  FROM reservations WHERE status = 'recognized' GROUP BY service_id)"
        " SELECT 'service ' || service_id, 'revenue '"
        f" || {_rubles('coalesce(e.revenue, 0)')} || ', recognized '"
        f" || {_rubles('coalesce(r.recognized, 0)')}"
        " FROM earned AS e FULL JOIN recognized AS r USING (service_id)"
        " WHERE coalesce(e.revenue, 0) <> coalesce(r.recognized, 0)",
    ),
    Check(
        "every user's events are numbered without gaps, the last showing the balances",
        "WITH last AS (SELECT DISTINCT ON (user_id) user_id, user_seq, available, reserved"
        "  FROM events ORDER BY user_id, event_id DESC),"
        " spans AS (SELECT user_id, min(user_seq) AS first, count(*) AS events FROM events"
        "  GROUP BY user_id)"
        " SELECT 'user ' || user_id, CASE WHEN a.user_id IS NULL THEN 'has events but no account'"
        "  WHEN l.user_seq - s.first + 1 <> s.events"
        "  THEN 'events ' || s.first || '..' || l.user_seq || ' with ' || s.events || ' stored'"
        "  WHEN l.user_seq <> a.event_seq"
        "  THEN 'last event ' || l.user_seq || ', the account says ' || a.event_seq"
        f"  ELSE 'last event: available ' || {_rubles('l.available')} || ', reserved '"
        f"  || {_rubles('l.reserved')} || '; the account: ' || {_rubles('a.available')}"
        f"  || ', ' || {_rubles('a.reserved')} END"
        " FROM last AS l JOIN spans AS s USING (user_id) LEFT JOIN accounts AS a USING (user_id)"
        " WHERE a.user_id IS NULL OR l.user_seq - s.first + 1 <> s.events"
        "  OR l.user_seq <> a.event_seq"
        "  OR l.available <> a.available OR l.reserved <> a.reserved",
    ),
    # A user's movements, in the order they were applied to the user (the user's row
    # lock orders them, so entry ids do), against the transactions the user's stored
    # events name, in user_seq order: the same list, or its end where the oldest
    # events were pruned. A user whose events were all pruned has nothing to compare.
    Check(
        "every movement of a user has the user's event, in the order it was applied",
        "WITH moved AS (SELECT user_id, array_agg(transaction_id ORDER BY first) AS txs"
        "  FROM (SELECT user_id, transaction_id, min(id) AS first FROM entries"
        "   WHERE user_id IS NOT NULL GROUP BY user_id, transaction_id) AS t GROUP BY user_id),"
        " told AS (SELECT user_id, min(user_seq) AS first,"
        "  coalesce(array_agg(transaction_id ORDER BY user_seq)"
        "   FILTER (WHERE transaction_id IS NOT NULL), '{}') AS txs"
        "  FROM events GROUP BY user_id),"
        " pairs AS (SELECT user_id, coalesce(m.txs, '{}') AS moved, e.txs AS told, e.first,"
        "  coalesce(a.event_seq, 0) AS written,"
        # where the stored events start among the movements: at the first unless pruned
        "  CASE WHEN e.first = 1 THEN 0"
        "  ELSE greatest(cardinality(m.txs) - cardinality(e.txs), 0) END AS skipped"
        "  FROM moved AS m FULL JOIN told AS e USING (user_id) LEFT JOIN accounts AS a"
        "  USING (user_id))"
        " SELECT 'user ' || user_id, cardinality(moved) || ' movement(s), '"
        "  || coalesce(cardinality(told), 0) || ' stored event(s) naming one'"
        "  || coalesce(', from user_seq ' || first, '') || CASE"
        "  WHEN told IS NULL THEN '; no event was ever written'"
        "  ELSE '; the first that differs: ' || coalesce((SELECT coalesce('transaction ' || m,"
        "   'none') || ' moved, ' || coalesce('transaction ' || e, 'none') || ' told'"
        "   FROM unnest(moved[skipped + 1:], told) AS x (m, e)"
        "   WHERE m IS DISTINCT FROM e LIMIT 1), 'the order') END"
        " FROM pairs"
        " WHERE (told IS NULL AND written = 0 AND cardinality(moved) > 0)"
        "  OR (told IS NOT NULL AND (cardinality(told) > cardinality(moved)"
        "  OR moved[cardinality(moved) - cardinality(told) + 1:] <> told"
        "  OR (first = 1 AND cardinality(told) <> cardinality(moved))))",
    ),
    # What a transaction row says of its parties, which statements and events show
    # (the counterparty, the order, the service), against its entries: a deposit's,
    # a withdrawal's or an order's one user; a transfer's payer and payee; a
    # multi-leg movement's first leg among its users; an order's reservation of
    # that user and service.
    Check(
        "every transaction names the parties its entries and reservation have",
        "WITH sides AS (SELECT transaction_id, count(DISTINCT user_id) AS users,"
        "  min(user_id) AS lowest, max(user_id) AS highest,"
        "  min(user_id) FILTER (WHERE account = 'available' AND amount < 0) AS payer,"
        "  min(user_id) FILTER (WHERE account = 'available' AND amount > 0) AS payee"
        "  FROM entries WHERE user_id IS NOT NULL GROUP BY transaction_id)"
        " SELECT 'transaction ' || t.id, t.kind || ' of user ' || coalesce(t.user_id::text, '-')"
        "  || coalesce(' to ' || t.counterparty_user_id, '')"
        "  || coalesce(', order ' || t.order_id, '') || coalesce(', service ' || t.service_id, '')"
        "  || '; its entries: ' || coalesce(s.users, 0) || ' user(s), '"
        "  || coalesce(s.lowest || '..' || s.highest, 'none')"
        "  || coalesce(', paid by ' || s.payer, '') || coalesce(' to ' || s.payee, '')"
        "  || coalesce('; its reservation: user ' || r.user_id || ', service ' || r.service_id, '')"
        " FROM transactions AS t JOIN sides AS s ON s.transaction_id = t.id"
        " LEFT JOIN reservations AS r ON r.order_id = t.order_id"
        " WHERE CASE"
        "  WHEN t.kind = 'transfer' THEN s.users <> 2 OR t.user_id IS DISTINCT FROM s.payer"
        "   OR t.counterparty_user_id IS DISTINCT FROM s.payee"
        "   OR t.order_id IS NOT NULL OR t.service_id IS NOT NULL"
        "  WHEN t.kind = 'movement' THEN s.users < 2 OR t.user_id IS NULL"
        "   OR t.user_id < s.lowest OR t.user_id > s.highest"
        "   OR t.counterparty_user_id IS NOT NULL"
        "   OR t.order_id IS NOT NULL OR t.service_id IS NOT NULL"
        "  ELSE s.users <> 1 OR t.user_id IS DISTINCT FROM s.lowest"
        "   OR t.counterparty_user_id IS NOT NULL OR CASE"
        "    WHEN t.kind IN ('deposit', 'withdrawal')"
        "    THEN t.order_id IS NOT NULL OR t.service_id IS NOT NULL"
        # an order's: reserve, cancel, recognize, expire
        "    ELSE r.order_id IS NULL OR r.user_id <> t.user_id"
        "     OR r.service_id IS DISTINCT FROM t.service_id END END",
    ),
    # The index of a statement's filter on metadata (`?metadata.order=77`): a missing
    # row hides a transaction from its users' filtered statements, a stray one shows
    # a transaction under a pair it does not carry.
    Check(
        "every tagged transaction is indexed under each of its pairs for each of its users,"
        " and nothing else is",
        "WITH expected AS (SELECT DISTINCT e.user_id, m.key || '=' || m.value AS tag,"
        "  t.created_at, t.id AS transaction_id FROM transactions AS t"
        "  CROSS JOIN LATERAL jsonb_each_text(t.metadata) AS m"
        "  JOIN entries AS e ON e.transaction_id = t.id AND e.user_id IS NOT NULL"
        "  WHERE t.metadata IS NOT NULL)"
        " SELECT 'transaction ' || transaction_id, 'user ' || user_id || ': '"
        "  || CASE WHEN g.tag IS NULL THEN 'not indexed under ' ELSE 'indexed under ' END"
        "  || quote_literal(tag) || CASE WHEN g.tag IS NULL THEN ''"
        "  ELSE ', which it does not carry' END"
        " FROM expected AS x FULL JOIN transaction_tags AS g"
        "  USING (user_id, tag, created_at, transaction_id)"
        " WHERE x.tag IS NULL OR g.tag IS NULL",
    ),
    # What each event says against the rows it tells of: its type and amount are its
    # movement's (application/events.py, _sides: a transfer's or a multi-leg
    # movement's side by its sign; a recognition's amount what was recognized, a
    # reserve's, a cancel's or an expiry's what was held, else what moved on the
    # available balance; a limit change, `limits_changed` and 0); its deltas are what
    # the movement's entries did to the user's two balances; its balances are the
    # previous stored event's plus its deltas (so, with the last event showing the
    # account, every event's balances are right); it names its movement's caller.
    Check(
        "every event's type, amount and deltas are its movement's, its balances the"
        " previous event's plus them, its caller its movement's",
        "WITH did AS (SELECT transaction_id, user_id,"
        "  coalesce(sum(amount) FILTER (WHERE account = 'available'), 0) AS available,"
        "  coalesce(sum(amount) FILTER (WHERE account = 'reserved'), 0) AS reserved,"
        "  coalesce(sum(amount) FILTER (WHERE kind = 'recognize'), 0) AS recognized"
        "  FROM entries WHERE user_id IS NOT NULL GROUP BY transaction_id, user_id),"
        " told AS (SELECT event_id, user_id, user_seq, type, transaction_id, amount,"
        "  available_delta, reserved_delta, available, reserved, caller,"
        "  lag(user_seq) OVER w AS seq_before, lag(available) OVER w AS available_before,"
        "  lag(reserved) OVER w AS reserved_before FROM events"
        "  WINDOW w AS (PARTITION BY user_id ORDER BY user_seq)),"
        " moved AS (SELECT e.*, t.id AS tx, t.caller AS tx_caller,"
        "  coalesce(d.available, 0) AS moved_available,"
        "  coalesce(d.reserved, 0) AS moved_reserved, d.recognized, t.kind AS tx_kind"
        "  FROM told AS e LEFT JOIN did AS d USING (transaction_id, user_id)"
        "  LEFT JOIN transactions AS t ON t.id = e.transaction_id),"
        " checked AS (SELECT *, CASE WHEN tx_kind IS NULL THEN 'limits_changed'"
        "  WHEN tx_kind IN ('transfer', 'movement')"
        "  THEN tx_kind || CASE WHEN moved_available < 0 THEN '_out' ELSE '_in' END"
        "  ELSE tx_kind END AS moved_type,"
        "  CASE tx_kind WHEN 'recognize' THEN -recognized WHEN 'reserve' THEN moved_reserved"
        "  WHEN 'cancel' THEN -moved_reserved WHEN 'expire' THEN -moved_reserved"
        "  ELSE abs(moved_available) END AS moved_amount FROM moved)"
        " SELECT 'event ' || event_id, 'user ' || user_id || ' #' || user_seq || ': ' || CASE"
        "  WHEN type <> moved_type OR amount <> moved_amount"
        f"  THEN type || ' of ' || {_rubles('amount')} || ', '"
        "  || coalesce('transaction ' || transaction_id, 'a limit change') || ' is '"
        f"  || moved_type || ' of ' || {_rubles('moved_amount')}"
        "  WHEN available_delta <> moved_available OR reserved_delta <> moved_reserved"
        f"  THEN 'deltas ' || {_rubles('available_delta')} || ' and '"
        f"  || {_rubles('reserved_delta')} || ', '"
        "  || coalesce('transaction ' || transaction_id, 'a limit change') || ' moved '"
        f"  || {_rubles('moved_available')} || ' and ' || {_rubles('moved_reserved')}"
        "  WHEN seq_before = user_seq - 1 AND (available <> available_before + available_delta"
        "  OR reserved <> reserved_before + reserved_delta)"
        f"  THEN 'balances ' || {_rubles('available')} || ' and ' || {_rubles('reserved')}"
        f"  || ', the event before showed ' || {_rubles('available_before')} || ' and '"
        f"  || {_rubles('reserved_before')}"
        "  ELSE 'caller ' || coalesce(caller, 'none') || ', transaction ' || transaction_id"
        "  || ' names ' || coalesce(tx_caller, 'none') END"
        " FROM checked"
        " WHERE type <> moved_type OR amount <> moved_amount"
        "  OR available_delta <> moved_available OR reserved_delta <> moved_reserved"
        "  OR (seq_before = user_seq - 1 AND (available <> available_before + available_delta"
        "  OR reserved <> reserved_before + reserved_delta))"
        "  OR (tx IS NOT NULL AND caller IS DISTINCT FROM tx_caller)",
    ),
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    broken: int
    """How many subjects break it; 0: it holds."""
    examples: tuple[tuple[str, str], ...]


class SchemaBehind(Exception):
    """The schema is at a revision before this code's: its checks read columns it may
    not have yet."""


@dataclass(frozen=True, slots=True)
class Audit:
    snapshot_at: str
    schema: str
    """The schema's revision; one this code does not know is a later version's, whose
    newer invariants these checks do not know either."""
    accounts: int
    transactions: int
    entries: int
    findings: tuple[Finding, ...]

    @property
    def holds(self) -> bool:
        return all(f.broken == 0 for f in self.findings)

    @property
    def schema_ahead(self) -> bool:
        return self.schema not in known_revisions()


async def audit(url: str, examples: int = 5) -> Audit:
    """Every check in one snapshot; up to `examples` subjects named for each broken one.
    Raises SchemaBehind on a schema this code would migrate."""
    connection = await open_connection(libpq_url(url), per_host=ADMIN_CONNECT_TIMEOUT)
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            top = await connection.fetchrow(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',"
                ' \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') AS at,'
                " (SELECT count(*) FROM accounts) AS accounts,"
                " (SELECT count(*) FROM transactions) AS transactions,"
                " (SELECT count(*) FROM entries) AS entries,"
                " (SELECT version_num FROM alembic_version) AS schema"
            )
            schema = top["schema"]
            if behind(schema):
                raise SchemaBehind(
                    f"the schema is at {schema}, and these checks are for {head_revision()}:"
                    f" migrate it (balance migrate), or run the verify of the version at {schema}"
                )
            findings = [await _find(connection, check, examples) for check in CHECKS]
    finally:
        await connection.close()
    return Audit(
        top["at"], schema, top["accounts"], top["transactions"], top["entries"], tuple(findings)
    )


async def _find(connection: asyncpg.Connection, check: Check, examples: int) -> Finding:
    rows = await connection.fetch(
        f"SELECT subject, wrong, count(*) OVER () AS broken FROM ({check.sql})"
        " AS broken (subject, wrong) ORDER BY subject LIMIT $1",
        examples,
    )
    broken = rows[0]["broken"] if rows else 0
    return Finding(check.name, broken, tuple((r["subject"], r["wrong"]) for r in rows))
