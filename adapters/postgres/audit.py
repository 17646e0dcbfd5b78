"""`balance verify`: the ledger's invariants checked on the stored rows alone, in one
snapshot, without stopping the service.

The schema enforces what one row can say (a reserved balance never negative, an
available one within the credit limit, entries and transactions append-only). What
spans rows it cannot: that a transaction's entries sum to zero, that an account's
balances are the sum of its entries, that each entry's `balance_after` is the sum
of the entries before it, that the held money is the sum of the open reservations,
that each reservation was opened once and closed at most once, that revenue is
what was recognized, that the outbox's last event of a user shows the user's
balances, and that it holds an event of each movement of the user, in order;
that what readers are told (events, transactions' parties, the metadata index)
is what the entries did; and that each answer stored under an Idempotency-Key,
which a retry is given byte for byte, tells the transaction and balances the
ledger holds. A bug, a hand-made fix or a restore that broke one of these is
found here, named, with examples.

Read in one REPEATABLE READ, READ ONLY transaction: every batch commits whole, so
any snapshot holds every invariant, with movements going on. It reads every row
(sequential scans, and sorts of the entries): run it on a standby, where
its long snapshot holds nothing back on the primary.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import msgspec

from adapters.postgres.engine import ADMIN_CONNECT_TIMEOUT, libpq_url, open_connection
from adapters.postgres.revisions import behind, head_revision, known_revisions


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    """What holds, said as a fact."""
    sql: str
    """The rows that break it: a subject and what is wrong with it, as text."""
    parses: str | None = None
    """The JSON it reads, as (subject, bytes): when a row stops the check, the rows
    that are not JSON objects are named from these."""
    planner: tuple[tuple[str, str], ...] = ()
    """Planner settings for this check alone."""


def _rubles(column: str) -> str:
    """SQL for a kopecks column as rubles text, sign and two decimals: -1.05."""
    return f"to_char({column} / 100.0, 'FM9999999999999999990.00')"


# The stored answers of movements: the service's are JSON objects; what is not one,
# it did not write.
_ANSWERS = (
    "FROM idempotency_keys WHERE status IN (200, 201)"
    " AND substring(body FROM 1 FOR 1) = '\\x7b'::bytea"
)

# The stored answers that are not a success: refusals.
_REFUSALS = "FROM idempotency_keys WHERE status NOT IN (200, 201)"

_HASHED = (("enable_nestloop", "off"), ("jit", "off"))
"""Planner settings for a check that joins what the planner cannot estimate (JSON,
stale statistics): by hashes, every step linear in its tables; without JIT, whose
threshold the refused plans' cost passes (2 s of compiling on an empty ledger)."""

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
    # multi-leg movement's first leg; an order's reservation of that user and service.
    Check(
        "every transaction names the parties its entries and reservation have",
        "WITH sides AS (SELECT transaction_id, count(DISTINCT user_id) AS users,"
        "  min(user_id) AS lowest, max(user_id) AS highest,"
        "  min(user_id) FILTER (WHERE account = 'available' AND amount < 0) AS payer,"
        "  min(user_id) FILTER (WHERE account = 'available' AND amount > 0) AS payee,"
        # the user of its first entry: a movement's first leg (entries keep posting order)
        "  (min(ARRAY[id, user_id]))[2] AS first"
        "  FROM entries WHERE user_id IS NOT NULL GROUP BY transaction_id)"
        " SELECT 'transaction ' || t.id, t.kind || ' of user ' || coalesce(t.user_id::text, '-')"
        "  || coalesce(' to ' || t.counterparty_user_id, '')"
        "  || coalesce(', order ' || t.order_id, '') || coalesce(', service ' || t.service_id, '')"
        "  || '; its entries: ' || coalesce(s.users, 0) || ' user(s), '"
        "  || coalesce(s.lowest || '..' || s.highest, 'none')"
        "  || coalesce(', paid by ' || s.payer, '') || coalesce(' to ' || s.payee, '')"
        "  || CASE WHEN t.kind = 'movement' THEN ', first leg ' || s.first ELSE '' END"
        "  || coalesce('; its reservation: user ' || r.user_id || ', service ' || r.service_id, '')"
        " FROM transactions AS t JOIN sides AS s ON s.transaction_id = t.id"
        " LEFT JOIN reservations AS r ON r.order_id = t.order_id"
        " WHERE CASE"
        "  WHEN t.kind = 'transfer' THEN s.users <> 2 OR t.user_id IS DISTINCT FROM s.payer"
        "   OR t.counterparty_user_id IS DISTINCT FROM s.payee"
        "   OR t.order_id IS NOT NULL OR t.service_id IS NOT NULL"
        "  WHEN t.kind = 'movement' THEN s.users < 2 OR t.user_id IS DISTINCT FROM s.first"
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
    # A user's entries are stamped in the order they were applied (README, decision
    # 10): statements list them by time, so an entry stamped before the one applied
    # before it shows out of place.
    Check(
        "every user's entries are stamped in the order they were applied",
        "SELECT 'entry ' || id, 'user ' || user_id || ': stamped ' || created_at"
        "  || ', before entry ' || before_id || '''s ' || before_at"
        " FROM (SELECT id, user_id, created_at, lag(id) OVER w AS before_id,"
        "  lag(created_at) OVER w AS before_at FROM entries WHERE user_id IS NOT NULL"
        "  WINDOW w AS (PARTITION BY user_id ORDER BY id)) AS e"
        " WHERE created_at < before_at",
    ),
    # What a retry under an Idempotency-Key is answered, byte for byte, against the
    # ledger. An answer naming a transaction names one that is recorded, of its kind,
    # at its time, with its metadata, moving what it says for each user it names and
    # naming every user it moved, with each user's balances right after it (those the
    # transaction's own entries or the user's event of it show: the events' check ties
    # these to the entries; an account neither shows, its event pruned, goes
    # unchecked). No two requests' own answers name one transaction (a batch's answer
    # and its operation's under a key of its own may, and so may two batches that
    # repeat that operation: it is replayed); nor do two batches' answers name one
    # that no key of its own answers (an operation without a key runs once); nor, by
    # the same rule, do two answers say they made one reservation (201). An answer
    # about an order is its reservation's, and a first reserve's (201) balances are
    # those right after it (a repeat's are those of its own moment).
    Check(
        "every stored answer tells what its transaction did and the balances after it",
        "WITH stored AS (SELECT key, created_at AS stored_at, status AS answered,"
        f"  convert_from(body, 'UTF8')::jsonb AS a {_ANSWERS}),"
        # each movement's answer, alone or an operation's in a batch's answer
        " answers AS (SELECT x.key, x.stored_at, x.own, x.answered, f.* FROM ("
        "  SELECT key, stored_at, true AS own, answered, a FROM stored WHERE NOT a ? 'results'"
        "  UNION ALL SELECT key, stored_at, false, (r ->> 'status')::int, r -> 'body'"
        "  FROM stored CROSS JOIN LATERAL jsonb_array_elements(a -> 'results') AS r"
        "  WHERE a ? 'results' AND r ->> 'status' IN ('200', '201')) AS x"
        "  CROSS JOIN LATERAL jsonb_to_record(x.a) AS f (transaction_id bigint, user_id bigint,"
        "  from_user_id bigint, to_user_id bigint, order_id bigint, service_id bigint,"
        "  amount numeric, recognized_amount numeric, status text, created_at timestamptz,"
        "  closed_at timestamptz, metadata jsonb, balance jsonb, from_balance jsonb,"
        "  to_balance jsonb, legs jsonb)),"
        " moved AS (SELECT key, stored_at, own, transaction_id AS tx, created_at AS at,"
        "  coalesce(metadata, '{}') AS metadata, CASE WHEN legs IS NOT NULL THEN 'movement'"
        "  WHEN from_user_id IS NOT NULL THEN 'transfer' END AS shape FROM answers"
        "  WHERE transaction_id IS NOT NULL),"
        " held AS (SELECT x.key, x.own, x.stored_at, x.answered, x.user_id AS said_user,"
        "  x.service_id AS said_service,"
        "  x.amount AS said_amount, x.status AS said_status, x.created_at AS said_at,"
        "  x.closed_at AS said_closed, x.recognized_amount AS said_recognized,"
        "  x.order_id AS said_order, x.balance, r.*, t.id AS reserve_tx FROM answers AS x"
        "  LEFT JOIN reservations AS r ON r.order_id = x.order_id"
        "  LEFT JOIN transactions AS t ON t.order_id = r.order_id AND t.kind = 'reserve'"
        "  WHERE x.order_id IS NOT NULL AND x.transaction_id IS NULL),"
        # (key, transaction, user, the change to available it says, signed or not, the
        # balances it says)
        " said AS (SELECT key, transaction_id AS tx, user_id, amount, false AS signed, balance"
        "  FROM answers WHERE transaction_id IS NOT NULL AND user_id IS NOT NULL"
        "  UNION ALL SELECT key, transaction_id, from_user_id, -amount, true, from_balance"
        "  FROM answers WHERE transaction_id IS NOT NULL AND from_user_id IS NOT NULL"
        "  UNION ALL SELECT key, transaction_id, to_user_id, amount, true, to_balance"
        "  FROM answers WHERE transaction_id IS NOT NULL AND to_user_id IS NOT NULL"
        "  UNION ALL SELECT key, transaction_id, (l ->> 'user_id')::bigint,"
        "  (l ->> 'amount')::numeric, true, l -> 'balance' FROM answers"
        "  CROSS JOIN LATERAL jsonb_array_elements(legs) AS l"
        "  WHERE transaction_id IS NOT NULL AND legs IS NOT NULL"
        "  UNION ALL SELECT key, reserve_tx, user_id, NULL, false, balance FROM held"
        "  WHERE answered = 201 AND reserve_tx IS NOT NULL),"
        # what each transaction did to each of its users: the change to available, and
        # the balance after its last entry on each account it touched
        " did AS (SELECT transaction_id AS tx, user_id,"
        "  sum(amount) FILTER (WHERE account = 'available') AS moved,"
        "  (max(ARRAY[id, balance_after]) FILTER (WHERE account = 'available'))[2] AS available,"
        "  (max(ARRAY[id, balance_after]) FILTER (WHERE account = 'reserved'))[2] AS reserved"
        "  FROM entries WHERE user_id IS NOT NULL AND transaction_id IN (SELECT tx FROM said)"
        "  GROUP BY transaction_id, user_id),"
        " parties AS (SELECT tx, count(*) AS users FROM did GROUP BY tx),"
        # (a batch's answer may tell one operation twice: replayed under its key)
        " named AS (SELECT key, tx, count(DISTINCT user_id) AS users FROM said"
        "  GROUP BY key, tx),"
        # What each answer claims was done by it alone: the transaction it names, or
        # the reservation it says it made (201; a repeat is 200). No two requests' own
        # answers claim one thing; nor do two batches' answers (two keys) claim one that
        # no answer of its own claims (an operation under a key of its own is replayed in
        # every batch that repeats it; one without a key, never). A key is kept a day at
        # least (prune-keys): what was done in the last day keeps its own answer, if it
        # had one; an older one's may be forgotten.
        " claimed AS (SELECT 'transaction ' || tx AS what, key, own, stored_at, at FROM moved"
        "  UNION ALL SELECT 'order ' || said_order || ' reserved by it (201)', key, own,"
        "  stored_at, created_at FROM held WHERE answered = 201),"
        " twice AS (SELECT what, true AS own FROM claimed WHERE own"
        "  GROUP BY what HAVING count(*) > 1"
        "  UNION ALL SELECT what, false FROM claimed AS c WHERE NOT own"
        "  AND at > now() - interval '1 day'"
        "  AND NOT EXISTS (SELECT FROM claimed AS o WHERE o.own AND o.what = c.what)"
        "  GROUP BY what HAVING count(DISTINCT key) > 1),"
        " firsts AS (SELECT DISTINCT ON (what, own) what, own, key AS first FROM claimed"
        "  JOIN twice USING (what, own) ORDER BY what, own, stored_at, key),"
        " after AS (SELECT s.*, d.moved, coalesce(d.available, v.available) AS available_after,"
        "  coalesce(d.reserved, v.reserved) AS reserved_after"
        "  FROM said AS s LEFT JOIN did AS d USING (tx, user_id)"
        "  LEFT JOIN events AS v ON v.transaction_id = s.tx AND v.user_id = s.user_id),"
        # each answer's first wrong thing; NULL: none
        " wrong AS (SELECT m.key, 'answers transaction ' || m.tx || CASE"
        "  WHEN t.id IS NULL THEN ', which is not recorded'"
        "  WHEN t.kind <> coalesce(m.shape, t.kind)"
        "   OR (m.shape IS NULL AND t.kind NOT IN ('deposit', 'withdrawal'))"
        "  THEN ', a ' || t.kind || ', in the shape of a '"
        "   || coalesce(m.shape, 'deposit or withdrawal')"
        "  WHEN m.at <> t.created_at"
        "  THEN ' of ' || m.at || '; it was recorded at ' || t.created_at"
        "  WHEN m.metadata <> coalesce(t.metadata, '{}')"
        "  THEN ' with metadata ' || m.metadata::text || '; it carries '"
        "   || coalesce(t.metadata, '{}')::text"
        "  WHEN n.users <> coalesce(p.users, 0)"
        "  THEN ' naming ' || n.users || ' user(s); it moved the money of '"
        "   || coalesce(p.users, 0)"
        "  END AS wrong"
        "  FROM moved AS m LEFT JOIN transactions AS t ON t.id = m.tx"
        "  LEFT JOIN named AS n USING (key, tx) LEFT JOIN parties AS p USING (tx)"
        "  UNION ALL SELECT key, 'answers user ' || user_id || ' of transaction ' || tx || CASE"
        "  WHEN moved IS NULL AND available_after IS NULL AND reserved_after IS NULL"
        "  THEN ', whose entries do not touch the user'"
        "  WHEN amount * 100 <> CASE WHEN signed THEN moved ELSE abs(moved) END"
        "  THEN ' moving ' || to_char(amount, 'FM9999999999999999990.00') || ', its entries moved '"
        f"   || {_rubles('moved')}"
        "  WHEN (balance ->> 'available')::numeric * 100 <> available_after"
        "   OR (balance ->> 'reserved')::numeric * 100 <> reserved_after"
        "  THEN ' with balances ' || (balance ->> 'available') || ' and '"
        "   || (balance ->> 'reserved') || ', the ledger''s after it '"
        f"   || coalesce({_rubles('available_after')}, '?') || ' and '"
        f"   || coalesce({_rubles('reserved_after')}, '?') END"
        "  FROM after"
        "  UNION ALL SELECT key, 'answers order ' || said_order || CASE"
        "  WHEN order_id IS NULL THEN ', which has no reservation'"
        "  WHEN said_user <> user_id OR said_service <> service_id OR said_amount * 100 <> amount"
        "   OR said_at <> created_at OR (said_status <> 'reserved' AND (said_status <> status"
        "   OR said_closed IS DISTINCT FROM closed_at"
        "   OR said_recognized * 100 IS DISTINCT FROM recognized_amount))"
        "  THEN ': user ' || said_user || ', service ' || said_service || ', '"
        "   || to_char(said_amount, 'FM9999999999999999990.00') || ' held at ' || said_at"
        "   || ', ' || said_status"
        "   || coalesce(' ' || to_char(said_recognized, 'FM9999999999999999990.00'), '')"
        "   || coalesce(' at ' || said_closed, '') || '; the reservation: user '"
        f"   || user_id || ', service ' || service_id || ', ' || {_rubles('amount')}"
        "   || ' held at ' || created_at || ', ' || status"
        f"   || coalesce(' ' || {_rubles('recognized_amount')}, '')"
        "   || coalesce(' at ' || closed_at, '') END"
        "  FROM held"
        "  UNION ALL SELECT key, 'answers ' || what || ', as the answer of key '"
        "  || quote_literal(first) || ' does' FROM claimed JOIN firsts USING (what, own)"
        "  WHERE first <> key)"
        " SELECT DISTINCT ON (key) 'key ' || key, wrong FROM wrong WHERE wrong IS NOT NULL"
        " ORDER BY key, wrong",
        parses=f"SELECT 'key ' || key, body {_ANSWERS}",
        # The planner cannot know how many answers the JSON holds, nor, with stale
        # statistics, how many keys there are: on a soak's ledger (236,000 keys, its
        # statistics from when it was small) it planned one scan of all transactions
        # for each order's answer, and ran for minutes. Joined by hashes, every step is
        # linear in its tables. (Without JIT: the cost the switch adds to the plans it
        # refuses passed JIT's threshold, and compiling took 2 s on an empty ledger.)
        planner=_HASHED,
    ),
    # A key's first answer is its answer, a refusal too (README, decision 7): a key
    # answered with a refusal moved nothing, so no event carries it. (A key forgotten
    # by `prune-keys`, at least a day old, and used again: its first use's events are
    # older than a day before the new answer, and not counted.)
    Check(
        "no key answered with a refusal moved money under it",
        "SELECT 'key ' || k.key, 'answered ' || k.status || '; transaction '"
        " || min(e.transaction_id) || ' moved money under it'"
        " FROM idempotency_keys AS k JOIN events AS e ON e.idempotency_key = k.key"
        " WHERE k.status >= 400 AND e.created_at > k.created_at - interval '1 day'"
        " GROUP BY k.key, k.status",
        # Events have no index on their key: joined by a hash, never a scan of them all
        # for each refused key, whatever stale statistics say (as the answers' check).
        planner=_HASHED,
    ),
    # A retry is sent the stored refusal as it is, for good: a key stores a rule's
    # refusal (4xx), the problem its client was sent, never a server's trouble (a
    # stored 503 would refuse every retry of the key, though nothing ran).
    Check(
        "every refusal stored under a key is a rule's, and its problem says its status",
        "SELECT 'key ' || key, 'answered ' || status || CASE WHEN status NOT BETWEEN 400 AND 499"
        "  THEN ': a key stores an answer or a rule''s refusal, never a server''s error'"
        "  ELSE ', its stored problem says ' || coalesce(a ->> 'status', 'no status') END"
        " FROM (SELECT key, status, convert_from(body, 'UTF8')::jsonb AS a"
        f"  {_REFUSALS}) AS stored"
        " WHERE status NOT BETWEEN 400 AND 499 OR a ->> 'status' IS DISTINCT FROM status::text",
        parses=f"SELECT 'key ' || key, body {_REFUSALS}",
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
    # In a savepoint, always rolled back (it only reads): what stops a check stops it
    # alone, and its planner settings end with it.
    alone = connection.transaction()
    await alone.start()
    try:
        for name, value in check.planner:
            await connection.execute("SELECT set_config($1, $2, true)", name, value)
        rows = await connection.fetch(
            f"SELECT subject, wrong, count(*) OVER () AS broken FROM ({check.sql})"
            " AS broken (subject, wrong) ORDER BY subject LIMIT $1",
            examples,
        )
    except asyncpg.DataError as error:  # a value it cannot read: none the service writes
        await alone.rollback()
        return await _unreadable(connection, check, examples, error)
    await alone.rollback()
    broken = rows[0]["broken"] if rows else 0
    return Finding(check.name, broken, tuple((r["subject"], r["wrong"]) for r in rows))


async def _unreadable(
    connection: asyncpg.Connection, check: Check, examples: int, error: asyncpg.DataError
) -> Finding:
    """The check is broken: the rows whose JSON is not an object, named; if none is, the
    value that stopped it (PostgreSQL's message quotes it)."""
    named: list[tuple[str, str]] = []
    count = 0
    if check.parses is not None:
        async for subject, body in connection.cursor(check.parses, prefetch=1000):
            try:
                if isinstance(msgspec.json.decode(body), dict):
                    continue
                why = "is not a JSON object"
            except msgspec.DecodeError as bad:
                why = f"is not JSON: {bad}"
            count += 1
            if len(named) < examples:
                named.append((subject, f"its stored answer {why}"))
    if count:
        return Finding(check.name, count, tuple(named))
    return Finding(check.name, 1, (("a row", f"cannot be read: {error}"),))
