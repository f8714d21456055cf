"""Referrals (migration 0015): customers' link codes, who brought whom at their first
/start, and the commissions paid on Stars top-ups (``referral_payouts``).

Writers that take ``conn`` run inside the caller's transaction: a commission is
recorded with its ledger credit in the top-up's transaction, and taken back with
the refund's debit (bot/shop/growth/referrals.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.db import NOW, Database, first

MAX_CHAIN = 64  # referrers walked up when looking for a loop (chains are far shorter)


class CodeTaken(Exception):
    """Another customer has this code already (a new random one is tried)."""


async def code_of(db: Database, user_id: int) -> str | None:
    row = await db.fetchone("SELECT referral_code FROM users WHERE id = ?", (user_id,))
    return row[0] if row else None


async def give_code(db: Database, user_id: int, code: str) -> str | None:
    """``code`` becomes the customer's unless they have one already; their code
    either way (``None``: no such customer). Raises ``CodeTaken`` when another
    customer has ``code``."""
    try:
        await db.write("UPDATE users SET referral_code = ? WHERE id = ? AND referral_code IS NULL",
                       (code, user_id))
    except sqlite3.IntegrityError:
        raise CodeTaken(code) from None
    return await code_of(db, user_id)


async def start_referred(db: Database, user_id: int, code: str) -> int | None:
    """The customer's first /start, brought by the link ``code``: recorded, and the
    link's owner made their referrer, in one transaction. Returns the referrer, or
    ``None`` when nobody is made it: not the first /start (nothing changes), a
    customer who used the shop before it (a top-up, an order or a balance row: the
    link did not bring them, though they never pressed Start), no such code, their
    own code, or a loop (the customer is among the owner's own referrers, at any
    depth)."""
    async with db.transaction() as conn:
        started = await first(conn, f"UPDATE users SET started_at = {NOW}"
                                    " WHERE id = ? AND started_at IS NULL RETURNING id",
                              (user_id,))
        if started is None:
            return None
        used = await first(conn, "SELECT 1 FROM ledger WHERE user_id = ?1"
                                 " UNION ALL SELECT 1 FROM orders WHERE user_id = ?1"
                                 " UNION ALL SELECT 1 FROM topups WHERE user_id = ?1 LIMIT 1",
                           (user_id,))
        if used is not None:
            return None
        owner = await first(conn, "SELECT id FROM users WHERE referral_code = ?", (code,))
        if owner is None or int(owner[0]) == user_id:
            return None
        referrer = int(owner[0])
        loop = await first(
            conn, "WITH RECURSIVE chain (id, depth) AS ("
            "  SELECT referred_by, 1 FROM users WHERE id = ?"
            "  UNION ALL SELECT u.referred_by, c.depth + 1 FROM users u JOIN chain c ON u.id = c.id"
            "  WHERE c.depth < ?)"
            " SELECT 1 FROM chain WHERE id = ? LIMIT 1", (referrer, MAX_CHAIN, user_id))
        if loop is not None:
            return None
        await conn.execute(f"UPDATE users SET referred_by = ?, referred_at = {NOW}"
                           " WHERE id = ? AND referred_by IS NULL", (referrer, user_id))
        return referrer


@dataclass(frozen=True, slots=True)
class Referrer:
    id: int
    off: bool  # an admin turned their commissions off


async def referrer_of(conn: aiosqlite.Connection, user_id: int) -> Referrer | None:
    """Who brought ``user_id`` (inside a transaction), and whether they earn."""
    row = await first(conn, "SELECT r.id, r.referrals_off_at IS NOT NULL FROM users u"
                            " JOIN users r ON r.id = u.referred_by WHERE u.id = ?", (user_id,))
    return Referrer(int(row[0]), bool(row[1])) if row else None


async def record_payout(conn: aiosqlite.Connection, *, charge_id: str, level: int,
                        referrer_id: int, referred_id: int, topup_minor: int,
                        amount_minor: int) -> bool:
    """A commission on a top-up; False when this charge's level was paid before."""
    rows = await conn.execute_fetchall(
        "INSERT INTO referral_payouts (charge_id, level, referrer_id, referred_id, topup_minor,"
        " amount_minor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING level",
        (charge_id, level, referrer_id, referred_id, topup_minor, amount_minor))
    return bool(list(rows))


@dataclass(frozen=True, slots=True)
class Payout:
    charge_id: str
    level: int
    referrer_id: int
    amount_minor: int
    taken_back_minor: int
    written_off_minor: int


async def payouts_of(conn: aiosqlite.Connection, charge_id: str, state: str) -> list[Payout]:
    """A charge's commissions in ``state`` ('paid' or 'taken_back'), level 1 first
    (inside the caller's transaction)."""
    rows = await conn.execute_fetchall(
        "SELECT charge_id, level, referrer_id, amount_minor, taken_back_minor, written_off_minor"
        " FROM referral_payouts WHERE charge_id = ? AND state = ? ORDER BY level",
        (charge_id, state))
    return [Payout(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]


async def mark_taken_back(conn: aiosqlite.Connection, payout: Payout, *, taken_minor: int,
                          written_off_minor: int) -> bool:
    """Paid → taken_back, with what was taken from the balance and what was written
    off (the referrer had spent it); False when it was not 'paid'."""
    rows = await conn.execute_fetchall(
        f"UPDATE referral_payouts SET state = 'taken_back', taken_back_minor = ?,"
        f" written_off_minor = ?, taken_back_at = {NOW}"
        " WHERE charge_id = ? AND level = ? AND state = 'paid' RETURNING level",
        (taken_minor, written_off_minor, payout.charge_id, payout.level))
    return bool(list(rows))


async def mark_given_back(conn: aiosqlite.Connection, payout: Payout) -> bool:
    """Taken_back → paid (the refund did not happen): nothing taken, nothing written
    off; False when it was not 'taken_back'."""
    rows = await conn.execute_fetchall(
        "UPDATE referral_payouts SET state = 'paid', taken_back_minor = 0, written_off_minor = 0,"
        " taken_back_at = NULL WHERE charge_id = ? AND level = ? AND state = 'taken_back'"
        " RETURNING level", (payout.charge_id, payout.level))
    return bool(list(rows))


@dataclass(frozen=True, slots=True)
class Figures:
    """A referrer's figures, all time."""

    invited: int  # customers their link brought
    topped_up: int  # of those, how many have a Stars top-up paid (not refunded)
    earned_minor: int  # commissions paid (both levels)
    taken_back_minor: int  # taken back from the balance with refunded top-ups
    written_off_minor: int  # of refunded top-ups' commissions, what had been spent already
    off: bool  # an admin turned their commissions off
    referred_by: int | None  # who brought them


async def figures(db: Database, user_id: int) -> Figures | None:
    row = await db.fetchone(
        "SELECT (SELECT COUNT(*) FROM users WHERE referred_by = u.id),"
        " (SELECT COUNT(DISTINCT t.user_id) FROM topups t JOIN users r ON r.id = t.user_id"
        "   WHERE r.referred_by = u.id AND t.state = 'paid'),"
        " COALESCE(p.earned, 0), COALESCE(p.taken, 0), COALESCE(p.written, 0),"
        " u.referrals_off_at IS NOT NULL, u.referred_by"
        " FROM users u LEFT JOIN (SELECT referrer_id, SUM(amount_minor) AS earned,"
        "  SUM(taken_back_minor) AS taken, SUM(written_off_minor) AS written"
        "  FROM referral_payouts WHERE referrer_id = ? GROUP BY referrer_id) p"
        "  ON p.referrer_id = u.id WHERE u.id = ?", (user_id, user_id))
    if row is None:
        return None
    return Figures(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), bool(row[5]),
                   None if row[6] is None else int(row[6]))


@dataclass(frozen=True, slots=True)
class TopReferrer:
    user_id: int
    first_name: str
    username: str | None
    off: bool
    invited: int  # customers brought within the period
    earned_minor: int  # commissions of the period's top-ups
    taken_back_minor: int  # of those, taken back with refunds
    written_off_minor: int  # of those, written off (spent before the refund)


@dataclass(frozen=True, slots=True)
class Totals:
    invited: int
    referrers: int
    earned_minor: int
    taken_back_minor: int
    written_off_minor: int


def _top(row: Sequence) -> TopReferrer:
    return TopReferrer(int(row[0]), row[1] or "", row[2], bool(row[3]), int(row[4]), int(row[5]),
                       int(row[6]), int(row[7]))


# Since a stored time (ISO text, UTC); '' for all time (every stored time is after it).
_PERIOD = (
    "WITH invites AS (SELECT referred_by AS id, COUNT(*) AS invited FROM users"
    "  WHERE referred_by IS NOT NULL AND referred_at >= ? GROUP BY referred_by),"
    " pay AS (SELECT referrer_id AS id, SUM(amount_minor) AS earned,"
    "  SUM(taken_back_minor) AS taken, SUM(written_off_minor) AS written"
    "  FROM referral_payouts WHERE created_at >= ? GROUP BY referrer_id),"
    " ids AS (SELECT id FROM invites UNION SELECT id FROM pay)")


async def top(db: Database, since: str, limit: int) -> tuple[list[TopReferrer], Totals]:
    """The referrers of the period since ``since`` (stored time; '' for all time),
    most earned first, then most invited; and the period's totals."""
    rows = await db.fetchall(
        f"{_PERIOD} SELECT u.id, u.first_name, u.username, u.referrals_off_at IS NOT NULL,"
        " COALESCE(i.invited, 0) AS invited, COALESCE(p.earned, 0) AS earned,"
        " COALESCE(p.taken, 0), COALESCE(p.written, 0)"
        " FROM ids JOIN users u ON u.id = ids.id LEFT JOIN invites i ON i.id = ids.id"
        " LEFT JOIN pay p ON p.id = ids.id ORDER BY earned DESC, invited DESC, u.id LIMIT ?",
        (since, since, limit))
    total = await db.fetchone(
        f"{_PERIOD} SELECT (SELECT COALESCE(SUM(invited), 0) FROM invites),"
        " (SELECT COUNT(*) FROM ids), (SELECT COALESCE(SUM(earned), 0) FROM pay),"
        " (SELECT COALESCE(SUM(taken), 0) FROM pay), (SELECT COALESCE(SUM(written), 0) FROM pay)",
        (since, since))
    assert total is not None
    return [_top(r) for r in rows], Totals(*(int(value) for value in total))


async def set_off(conn: aiosqlite.Connection, user_id: int, off: bool) -> bool | None:
    """Turn a referrer's commissions off or on; the previous state (``None``: no such
    customer)."""
    row = await first(conn, "SELECT referrals_off_at IS NOT NULL FROM users WHERE id = ?",
                      (user_id,))
    if row is None:
        return None
    await conn.execute(
        f"UPDATE users SET referrals_off_at = CASE WHEN ? THEN COALESCE(referrals_off_at, {NOW})"
        " END WHERE id = ?", (int(off), user_id))
    return bool(row[0])
