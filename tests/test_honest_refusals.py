"""Refusals that say what is wrong: a quantity above every maximum, a markup with too
many decimals or a thousands separator, a broadcast to nobody, and the website-traffic
form's examples and choices. End to end through the Bot API emulator, in en/ru/tr."""

from __future__ import annotations

import pytest

from bot.devtools.emulator import NoAnswer, ScriptedUser
from bot.panel.order_types import MAX_INTEGER, TooLarge, get_order_type, parse_integer
from handlers.callbacks import AdminBroadcastCb
from tests.e2e import Shop
from tests.test_admin_broadcast import compose
from tests.test_admin_catalog import open_card
from tests.test_storefront import open_service

pytestmark = pytest.mark.timeout(120)

CUSTOMER = 42


def labels(user: ScriptedUser) -> list[str]:
    return [label for row in user.last().buttons for label in row]


# ------------------------------------------------------------------ quantities

@pytest.mark.parametrize("text", ["100000001", "999999999", "999 999 999", "1,000,000,000",
                                  "5000m", "9" * 40, "9" * 5000])
def test_a_number_above_the_maximum_is_too_large_not_malformed(text: str) -> None:
    with pytest.raises(TooLarge):
        parse_integer(text)
    assert parse_integer(str(MAX_INTEGER)) == MAX_INTEGER
    posts = get_order_type("Subscriptions").field_named("posts")  # at most 10,000 posts
    with pytest.raises(ValueError, match="largest allowed value is 10000"):
        posts.parse(text)


async def test_a_quantity_above_every_maximum_gets_the_services_maximum(shop: Shop) -> None:
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 101)  # 100 … 100,000
    await customer.tap("🛒 Order")
    await customer.send("https://instagram.com/someone")
    for text in ("100000000", "999999999", "9" * 300, "2000m"):
        await customer.send(text)
        assert "The largest amount for this service is 100,000." in customer.text, text
        assert "whole number" not in customer.text and "Step 2 of 3" in customer.text

    for language, said in (("ru", "Максимальное количество для этой услуги — 100\u00a0000."),
                           ("tr", "Bu hizmet için en yüksek miktar: 100.000.")):
        speaker = shop.user(CUSTOMER + ord(language[0]), "Ali", language_code=language)
        await open_service_by_link(speaker, shop, 101)
        await speaker.send("https://instagram.com/someone")
        await speaker.send("999999999")
        assert said in speaker.text, speaker.text


async def open_service_by_link(user: ScriptedUser, shop: Shop, service_id: int) -> None:
    """A service's form through its deep link (the buttons speak the user's language)."""
    [(ref,)] = await shop.query("SELECT id FROM services WHERE service_id = ?", (str(service_id),))
    await user.send(f"/start s{ref}")
    order = next(label for label in labels(user) if label.startswith("🛒"))
    try:
        await user.tap(order)
    except NoAnswer:  # pragma: no cover - a failure says which buttons there were
        raise AssertionError(labels(user)) from None


# ------------------------------------------------------------------ markups

async def test_a_markup_refusal_says_what_is_wrong(shop: Shop) -> None:
    admin = shop.admin
    await open_card(admin, shop, 101)
    await admin.tap("Service markup")
    for wrong, said in (("12.555", "more than two decimals"),
                        ("1,000", "more than two decimals (a thousand is written 1000)"),
                        ("1 000", "without a thousands separator, like 1000"),
                        ("20000", "outside -99 … 10000"), ("-100", "outside -99 … 10000"),
                        ("abc", "not a percent")):
        await admin.send(wrong)
        assert said in admin.text and "⚠️" in admin.text, (wrong, admin.text)
    await admin.send("-10")  # what MARKUP_PERCENT takes too (tests/test_config.py)
    assert "with -10%" in admin.text and "negative markup" in admin.text


# ------------------------------------------------------------------ broadcasts

async def test_a_broadcast_to_nobody_is_refused_before_sending(shop: Shop) -> None:
    admin = shop.admin
    await compose(shop, "Hello everyone")  # nobody but the admin has ever started the bot
    screen = admin.last()
    assert "Nobody in this audience can get it" in screen.text
    assert not any("Send to" in label for label in labels(admin)), labels(admin)
    # A Send button from before the audience emptied (forged here): refused, nothing sent.
    answer = await admin.tap_data(AdminBroadcastCb(action="confirm").pack(), screen)
    assert "nothing was sent" in answer["text"] and answer.get("show_alert")
    assert await shop.query("SELECT COUNT(*) FROM broadcasts") == [(0,)]
    assert await shop.query("SELECT COUNT(*) FROM outbox WHERE kind = 'broadcast'") == [(0,)]

    customer = shop.user(CUSTOMER)
    await customer.send("/start")
    await admin.tap("Everyone")
    assert "Send it?" in admin.text and "📣 Send to 1" in labels(admin)
    await admin.tap("Send to 1")
    await customer.expect("Hello everyone")


# ------------------------------------------------------------------ the traffic form

async def test_the_traffic_form_shows_its_own_examples_and_labelled_choices(shop: Shop) -> None:
    await shop.credit(CUSTOMER, 10_000)
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, 802)  # Website Traffic [Social referrers]
    await customer.tap("🛒 Order")
    assert "Example: https://your-site.com/page" in customer.text
    assert "instagram" not in customer.text.lower()
    await customer.send("https://my-shop.example/landing")
    await customer.send("1000")
    await customer.send("us")
    assert "Which devices should the visitors use?" in customer.text
    assert labels(customer)[:5] == ["🖥 Desktop", "📱 Mobile: Android", "📱 Mobile: iPhone",
                                    "📱 Mobile: Android and iPhone", "🔀 Desktop and mobile"]
    await customer.send("laptop")
    assert "Please tap one of the buttons." in customer.text
    await customer.tap("🔀 Desktop and mobile")
    assert "Where should the visitors come from?" in customer.text
    assert labels(customer)[:3] == ["🔎 From a Google search", "🔗 From a link on another site",
                                    "➡️ Direct visits"]
    await customer.tap("🔗 From a link on another site")
    assert "Referring page" in customer.text and "Example: https://example.com/page" in customer.text
    await customer.send("https://news.example.org/story")
    assert "Device: 🔀 Desktop and mobile" in customer.text
    assert "Traffic source: 🔗 From a link on another site" in customer.text
    await customer.tap("✅ Confirm")
    assert "placed" in customer.text
    [(fields,)] = await shop.query("SELECT fields FROM orders")
    assert '"device": "5"' in fields and '"type_of_traffic": "2"' in fields  # the panel's codes


@pytest.mark.parametrize(("service_id", "example"), [
    (201, "https://tiktok.com/@username"),  # TikTok Followers: a profile
    (202, "https://tiktok.com/@username/video/..."),  # TikTok Likes: a video
    (301, "https://youtube.com/watch?v=..."),  # YouTube Views
    (302, "https://youtube.com/@channel"),  # YouTube Subscribers
    (401, "https://t.me/channel"),  # Telegram Channel Members
    (103, "https://instagram.com/p/..."),  # Instagram Likes
])
async def test_each_platform_shows_its_own_example_link(shop: Shop, service_id: int,
                                                       example: str) -> None:
    customer = shop.user(CUSTOMER)
    await open_service(customer, shop, service_id)
    await customer.tap("🛒 Order")
    assert f"Example: {example}\n" in customer.text + "\n", customer.text


async def test_the_traffic_choices_speak_russian_and_turkish(shop: Shop) -> None:
    for language, device, source in (
            ("ru", "🔀 Компьютеры и телефоны", "🔗 По ссылке с другого сайта"),
            ("tr", "🔀 Bilgisayar ve mobil", "🔗 Başka bir sitedeki bağlantıdan")):
        speaker = shop.user(CUSTOMER + ord(language[0]), "Ali", language_code=language)
        await open_service_by_link(speaker, shop, 802)
        await speaker.send("https://my-shop.example/landing")
        await speaker.send("1000")
        await speaker.send("DE")
        assert device in labels(speaker), labels(speaker)
        await speaker.tap(device)
        assert source in labels(speaker), labels(speaker)
