"""Promo codes end to end: the unmodified bot, the Bot API emulator and a real SQLite
file. An admin makes codes with /promo_new and in 🛠 Admin → 🎟 Promo codes and turns
them off; a customer redeems them with /promo CODE, /promo and the balance screen's
🎟 Promo code, and reads every refusal."""

from __future__ import annotations

import asyncio

from bot.devtools.emulator import ScriptedUser
from tests.e2e import ADMIN_ID, Shop

CUSTOMER, OTHER = 42, 43


async def _make(shop: Shop, arguments: str) -> str:
    await shop.admin.send(f"/promo_new {arguments}")
    return shop.admin.text


async def test_an_admin_makes_codes_by_command_and_turns_one_off(shop: Shop) -> None:
    admin = shop.admin
    created = await _make(shop, "welcome5 balance 5 uses=2 days=30")
    assert "Created." in created and "Promo code WELCOME5" in created
    assert "$5.00 to the balance" in created and "used 0 of 2" in created
    assert "1 per customer" in created and "until " in created and "✅ on" in created
    assert "exists already" in await _make(shop, "Welcome5 discount 10")
    assert "like WELCOME52" in admin.text
    await admin.send("/promo_new")
    assert "Usage: /promo_new" in admin.text and "CODE discount PERCENT" in admin.text
    for arguments, fragment in [
        ("AB balance 5", "can't be a code"), ("SALE gift 5", "is not a kind of code"),
        ("SALE balance 1 000", "as one number without spaces, like 1000"),
        ("SALE balance abc", "is not an amount in USD. Please send an amount as a number"),
        ("SALE discount 60", "at most 50% (the DISCOUNT_MAX_PERCENT setting)"),
        ("SALE discount 0", "is not a percent"), ("SALE balance 5 forever", "is not an option"),
        ("SALE balance 5 uses=0", "uses= takes a whole number from 1 to 1,000,000"),
        ("SALE balance 5 min=3", "min= is for discount codes only"),
        ("<b>SALE</b> balance 5", "“<b>SALE</b>” can't be a code"),  # shown as typed
    ]:
        await admin.send(f"/promo_new {arguments}")
        assert fragment in admin.text, (arguments, admin.text)
    assert await shop.query("SELECT code FROM promo_codes") == [("WELCOME5",)]

    await admin.send("/promo_off welcome5")
    assert "Code WELCOME5 is off: customers can't use it any more." in admin.text
    await admin.send("/promo_off WELCOME5")
    assert "Code WELCOME5 was off already." in admin.text
    await admin.send("/promo_off NOPE123")
    assert "There is no promo code NOPE123" in admin.text
    await admin.send("/promo_off")
    assert "Usage: /promo_off CODE" in admin.text
    audit = await shop.query("SELECT admin_id, action, target_kind, target_id FROM audit_log"
                             " ORDER BY id")
    assert audit == [(ADMIN_ID, "promo_new", "promo", "WELCOME5"),
                     (ADMIN_ID, "promo_off", "promo", "WELCOME5")]


async def test_an_admin_makes_lists_and_turns_off_codes_in_the_panel(shop: Shop) -> None:
    admin = shop.admin
    await admin.send("/admin")
    await admin.tap("🎟 Promo codes")
    assert "No promo codes yet." in admin.text
    await admin.tap("➕ New code")
    assert "CODE balance AMOUNT [uses=N] [per_user=N] [days=N]" in admin.text
    assert "SPRING10 discount 10 days=30 min=5" in admin.text
    await admin.send_sticker()
    assert "Send the code and its terms as text" in admin.text
    await admin.send("spring10 discount 12,5")  # 12.5 in any locale
    assert "Send it again corrected" not in admin.text and "Created." in admin.text
    assert "12.5% off the next order" in admin.text
    await admin.send("after")  # the input is over: this is no code
    assert "Created." not in admin.text

    await admin.tap("⬅ Promo codes")
    await admin.tap("➕ New code")
    await admin.send("SUMMER discount 99")
    assert "at most 50%" in admin.text and "Send it again corrected, or /cancel." in admin.text
    await admin.send("/promo_new X")  # a command while typing: finish or cancel first
    assert "Finish what you are typing first" in admin.text
    await admin.send("SUMMER balance 2 per_user=3")
    assert "Created." in admin.text and "3 per customer" in admin.text

    await admin.tap("⬅ Promo codes")
    listing = admin.text
    assert "2 codes, newest first" in listing
    assert listing.index("SUMMER") < listing.index("SPRING10")
    assert "used 0 (no limit)" in listing and "never expires" in listing
    await admin.tap("SPRING10")
    assert "Promo code SPRING10" in admin.text
    answer = await admin.tap("🚫 Turn off")
    assert answer["text"] == "Code SPRING10 is off: customers can't use it any more."
    assert "⛔ turned off" in admin.text and admin.last().button("🚫 Turn off") is None
    await admin.tap("⬅ Promo codes")
    assert "SPRING10" in admin.text and "⛔ turned off" in admin.text
    await admin.tap("⬅ Admin")
    await admin.tap("📜 Audit log")
    assert "created promo code" in admin.text and "turned off promo code" in admin.text
    actions = await shop.query("SELECT action, target_id FROM audit_log ORDER BY id")
    assert actions == [("promo_new", "SPRING10"), ("promo_new", "SUMMER"),
                       ("promo_off", "SPRING10")]


async def test_a_balance_code_credits_once(shop: Shop) -> None:
    await _make(shop, "WELCOME5 balance 5")
    [(code_id,)] = await shop.query("SELECT id FROM promo_codes")
    customer = shop.user(CUSTOMER)
    await customer.send("/promo welcome5")  # the customer's first message: they get an account
    assert ("🎟 Code WELCOME5: $5.00 added to your balance. Your balance is now $5.00."
            in customer.text)
    assert await shop.balance(CUSTOMER) == (500, 500)
    [(kind, amount, key)] = await shop.query("SELECT kind, amount_minor, idempotency_key"
                                             " FROM ledger")
    assert (kind, amount) == ("promo", 500)
    assert key.startswith(f"promo:{code_id}:{CUSTOMER}:{CUSTOMER}:")  # the message's chat:id
    await customer.send("/promo WELCOME5")
    assert ("You have used code WELCOME5 already; it works once for each customer."
            in customer.text)
    assert await shop.balance(CUSTOMER) == (500, 500)
    await customer.send("/balance")
    assert "Your balance: $5.00" in customer.text and "🎟 Promo code" in customer.text
    assert await shop.query("SELECT uses FROM promo_codes") == [(1,)]


async def _ask(customer: ScriptedUser) -> None:
    await customer.send("/start")
    await customer.tap("💰 Balance")
    await customer.tap("🎟 Promo code")
    assert "Send your promo code, like SPRING10" in customer.text


async def test_the_balance_screen_asks_for_the_code_and_explains_wrong_input(shop: Shop) -> None:
    await _make(shop, "WELCOME5 balance 5")
    customer = shop.user(CUSTOMER)
    await _ask(customer)
    await customer.send_sticker()
    assert "Send the promo code as text, like SPRING10, or /cancel." in customer.text
    await customer.send("x" * 5000)
    assert "is not a promo code" in customer.text and "Send your promo code" in customer.text
    assert len(customer.text) < 300
    await customer.send("🙂")
    assert "“🙂” is not a promo code" in customer.text
    await customer.send("nope123")
    assert "There is no promo code NOPE123. Check its spelling" in customer.text
    await customer.send("/help")
    assert "Send the promo code itself" in customer.text
    await customer.send("/cancel")
    assert "No code redeemed." in customer.text
    await customer.send("WELCOME5")  # no longer asked for: nothing happens
    assert "I didn't get that" in customer.text
    assert await shop.balance(CUSTOMER) == (0, 0)

    await _ask(customer)
    await customer.send("/start")  # /start leaves too
    assert "Hi, Alex!" in customer.text
    await customer.send("WELCOME5")
    assert "I didn't get that" in customer.text

    await _ask(customer)
    await customer.send("  welcome5 ")
    assert "$5.00 added to your balance" in customer.text
    await customer.tap("💰 Balance")
    assert "🎟 Promo code" in customer.text and "+$5.00" in customer.text
    await customer.send("/promo")  # /promo alone asks too
    assert "Send your promo code" in customer.text
    await customer.send("WELCOME5")
    assert "used code WELCOME5 already" in customer.text
    await customer.send("WELCOME5")  # a refusal for good ends the asking
    assert "I didn't get that" in customer.text


async def test_every_refusal_and_a_discount_attached_to_the_next_order(shop: Shop) -> None:
    for arguments in ("OFF1 balance 1", "OLD1 balance 1 days=1", "ONE1 balance 1 uses=1",
                      "SPRING10 discount 10 min=5", "SUMMER20 discount 20"):
        assert "Created." in await _make(shop, arguments)
    await shop.admin.send("/promo_off OFF1")
    await shop.query("UPDATE promo_codes SET expires_at = 1 WHERE code = 'OLD1'")  # long past
    other = shop.user(OTHER, "Bob")
    await other.send("/promo ONE1")
    assert "added to your balance" in other.text
    customer = shop.user(CUSTOMER)
    answers = {
        "OFF1": "Code OFF1 has been turned off by the shop; it no longer works.",
        "OLD1": "Code OLD1 has expired.",
        "ONE1": "Code ONE1 has been used up: all its uses are taken.",
        "NOPE1": "There is no promo code NOPE1. Check its spelling and send it again.",
        "N!": "“N!” is not a promo code: a code is 3 to 32 letters, digits, _ or -, like SPRING10.",
        "spring10": "🎟 Code SPRING10 applied: 10% off the next order (orders from $5.00).",
        "SUMMER20": "🎟 Code SUMMER20 applied: 20% off the next order.\nIt takes the place of "
                    "code SPRING10, which no longer applies.",
    }
    for typed, answer in answers.items():
        await customer.send(f"/promo {typed}")
        assert answer in customer.text, (typed, customer.text)
    assert await shop.balance(CUSTOMER) == (0, 0)
    assert await shop.query("SELECT c.code, u.state FROM promo_uses u JOIN promo_codes c"
                            " ON c.id = u.code_id WHERE u.user_id = ? ORDER BY u.id",
                            (CUSTOMER,)) == [("SPRING10", "detached"), ("SUMMER20", "attached")]
    assert "🛒 New order" in str(customer.last().buttons)


async def test_answers_in_russian_and_turkish(shop: Shop) -> None:
    await _make(shop, "SPRING10 discount 12.5 min=5")
    await _make(shop, "WELCOME5 balance 5")
    turkish = shop.user(CUSTOMER, "Ayşe", language_code="tr")
    await turkish.send("/promo spring10")
    assert "%12,5" in turkish.text and "SPRING10" in turkish.text
    russian = shop.user(OTHER, "Иван", language_code="ru")
    await russian.send("/promo welcome5")
    assert "5,00" in russian.text and "WELCOME5" in russian.text
    await russian.send("/promo welcome5")
    assert "WELCOME5" in russian.text and "already" not in russian.text


async def test_fifty_customers_sending_the_last_use_at_once_one_is_credited(shop: Shop) -> None:
    await _make(shop, "LASTONE balance 3 uses=1")
    customers = [shop.user(5_000 + n, f"Guest{n}") for n in range(50)]
    await asyncio.gather(*(customer.send("/promo lastone") for customer in customers))
    credited = [c for c in customers if "added to your balance" in c.text]
    assert len(credited) == 1
    assert all("used up" in c.text for c in customers if c not in credited)
    assert await shop.query("SELECT COUNT(*), SUM(amount_minor) FROM ledger"
                            " WHERE kind = 'promo'") == [(1, 300)]
    assert await shop.query("SELECT uses FROM promo_codes") == [(1,)]
