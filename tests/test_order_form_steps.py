"""The order form's next step as a plain service: ``OrderService.next_step``, no aiogram.

Real SQLite, a real sandbox panel's catalog and real prices; the conversation
only stores the draft and renders what these steps say.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bot.devtools.sandbox.server import DEFAULT_KEY, SandboxPanel, start_sandbox
from bot.panel import PanelClient
from bot.panel.order_types import FieldError
from bot.shop.catalog.pricing import Pricer
from bot.shop.catalog.shop_catalog import refresh_catalog
from bot.shop.orders import form
from bot.shop.orders.service import OrderService
from storage import catalog as catalog_store
from storage import ledger, users
from storage.db import Database
from tests.conftest import FAST_RETRY

CUSTOMER = 7  # $100.00 on the balance
BROKE = 8  # nothing on the balance
LINK = "https://instagram.com/p/x"
T = TypeVar("T")


async def _open_service(db: Database, client: PanelClient) -> OrderService:
    await refresh_catalog(db, client, "USD")
    pricer = Pricer(db, "USD", Decimal(30), {"test": Decimal(1)})
    for user_id in (CUSTOMER, BROKE):
        await users.upsert_user(db, user_id, first_name="Ann")
    async with db.transaction() as conn:
        await ledger.post(conn, user_id=CUSTOMER, amount_minor=10_000, kind="credit", key="seed")
    return OrderService(db, {"test": client}, pricer)


async def _ref(db: Database, service_id: str) -> int:
    stored = await catalog_store.by_panel_id(db, "test", service_id)
    assert stored is not None
    return stored.ref


@pytest.fixture
async def service(db, sandbox, make_client) -> OrderService:
    return await _open_service(db, make_client(sandbox, timeout=1))


def _said(error: FieldError | None) -> str:
    """A step's error in English, as the customer would read it."""
    assert error is not None
    return error.render()


async def test_ask_a_wrong_answer_ask_again_then_confirm_with_the_quote(
        db, service: OrderService) -> None:
    draft = form.Draft(await _ref(db, "102"))  # Default, 50..20,000, $0.45 per 1000
    step = await service.next_step(CUSTOMER, draft)
    assert isinstance(step, form.AskField)
    assert (step.field.name, step.step, step.steps) == ("link", 1, 2)
    assert step.wrong_answer is None and step.no_longer_fits is None

    step = await service.next_step(CUSTOMER, draft, form.Typed("hello"))
    assert isinstance(step, form.AskField) and step.field.name == "link"
    assert "doesn't look like a link" in _said(step.wrong_answer)
    assert draft.values == {} and draft.history == []  # nothing taken

    step = await service.next_step(CUSTOMER, draft, form.Typed("https://tiktok.com/@x"))
    assert isinstance(step, form.AskField)
    assert "needs a link on instagram.com" in _said(step.wrong_answer)

    step = await service.next_step(CUSTOMER, draft, form.Typed("instagram.com/p/x"))
    assert isinstance(step, form.AskField)
    assert (step.field.name, step.step, step.steps, step.wrong_answer) == ("quantity", 2, 2, None)

    # Stored between updates (FSM data in SQLite) and read back: the form goes on.
    draft = form.Draft.from_data(draft.to_data())
    assert draft is not None
    step = await service.next_step(CUSTOMER, draft, form.Typed("10"))
    assert isinstance(step, form.AskField) and step.field.name == "quantity"
    assert _said(step.wrong_answer) == "The smallest amount for this service is 50."
    assert (step.step, step.steps) == (2, 2)

    step = await service.next_step(CUSTOMER, draft, form.Typed("1 000"))
    assert isinstance(step, form.ConfirmOrder)
    assert step.draft.values == {"link": LINK, "quantity": "1000"}
    assert step.quote.price_minor == 59  # 0.45 × 1.3 = 0.585, rounded up
    assert step.quote.quantity == 1000
    assert (step.balance_minor, step.shortfall_minor) == (10_000, 0)
    assert draft.shown_price == 59 and draft.screen  # what Confirm will hold the price to


async def test_the_confirmation_says_how_much_the_balance_is_short(db, service: OrderService
                                                                    ) -> None:
    draft = form.Draft(await _ref(db, "102"), values={"link": LINK, "quantity": "2000"},
                       history=["link", "quantity"])
    step = await service.next_step(BROKE, draft)
    assert isinstance(step, form.ConfirmOrder)
    assert (step.quote.price_minor, step.balance_minor, step.shortfall_minor) == (117, 0, 117)


async def test_skip_back_and_leaving_the_form(db, service: OrderService) -> None:
    draft = form.Draft(await _ref(db, "101"), values={"link": LINK, "quantity": "1000"},
                       history=["link", "quantity"])  # drip-feed allowed: runs is asked
    step = await service.next_step(CUSTOMER, draft)
    assert isinstance(step, form.AskField)
    assert (step.field.name, step.step, step.steps) == ("runs", 3, 3)

    step = await service.next_step(CUSTOMER, draft, form.Skipped())
    assert isinstance(step, form.ConfirmOrder) and draft.values["runs"] == ""
    screen = draft.screen

    step = await service.next_step(CUSTOMER, draft, form.WentBack())
    assert isinstance(step, form.AskField) and step.field.name == "runs"
    assert (draft.shown_price, draft.screen) == (None, "")  # that confirmation is gone
    assert screen

    step = await service.next_step(CUSTOMER, draft, form.Typed("5"))
    assert isinstance(step, form.AskField)
    assert (step.field.name, step.step, step.steps) == ("interval", 4, 4)  # runs brought it

    for expected in ("runs", "quantity", "link"):
        step = await service.next_step(CUSTOMER, draft, form.WentBack())
        assert isinstance(step, form.AskField) and step.field.name == expected
    step = await service.next_step(CUSTOMER, draft, form.Skipped())
    assert isinstance(step, form.AskField)
    assert _said(step.wrong_answer) == "This one can't be skipped."
    step = await service.next_step(CUSTOMER, draft, form.WentBack())
    assert isinstance(step, form.FormLeft) and step.stored.ref == draft.ref


async def test_choices_and_starting_over(db, service: OrderService) -> None:
    answers = {"username": "alice", "min": "100", "max": "200", "posts": "10", "old_posts": "0"}
    draft = form.Draft(await _ref(db, "116"), values=dict(answers), history=list(answers))
    token = draft.token
    step = await service.next_step(CUSTOMER, draft, form.Picked("7"))  # not a delay offered
    assert isinstance(step, form.AskField) and step.field.name == "delay"
    assert "Please pick one of" in _said(step.wrong_answer)
    step = await service.next_step(CUSTOMER, draft, form.Picked("30"))
    assert isinstance(step, form.AskField) and step.field.name == "expiry"
    step = await service.next_step(CUSTOMER, draft, form.Skipped())
    assert isinstance(step, form.ConfirmOrder)
    assert step.quote.quantity == 2000  # 200 on each of 10 posts

    step = await service.next_step(CUSTOMER, draft, form.StartedOver())
    assert isinstance(step, form.AskField) and step.field.name == "username"
    assert (draft.values, draft.history, draft.token) == ({}, [], token)


async def test_buttons_of_a_field_no_longer_asked_change_nothing(db, service: OrderService
                                                                 ) -> None:
    values = {"link": LINK, "quantity": "1000"}
    draft = form.Draft(await _ref(db, "102"), values=dict(values), history=list(values))
    for tap in (form.Picked("1"), form.Skipped()):
        assert isinstance(await service.next_step(CUSTOMER, draft, tap), form.NothingToAnswer)
        assert draft.values == values and draft.shown_price is None
    # Typed text when the form is complete: the customer is shown where the form is.
    assert isinstance(await service.next_step(CUSTOMER, draft, form.Typed("hi")),
                      form.ConfirmOrder)


async def test_an_answer_that_no_longer_fits_is_asked_again_with_why(db, service: OrderService
                                                                      ) -> None:
    """A form filled before the service's minimum rose (a catalog refresh)."""
    draft = form.Draft(await _ref(db, "102"), values={"link": LINK, "quantity": "30"},
                       history=["link", "quantity"], shown_price=2, screen="old")
    step = await service.next_step(CUSTOMER, draft)
    assert isinstance(step, form.AskField) and step.field.name == "quantity"
    assert step.wrong_answer is None
    assert _said(step.no_longer_fits) == "The smallest amount for this service is 50."
    assert draft.values == {"link": LINK} and (draft.shown_price, draft.screen) == (None, "")


async def test_a_form_with_nothing_to_go_on_has_expired(db, service: OrderService) -> None:
    assert isinstance(await service.next_step(CUSTOMER, None, form.Typed("x")), form.FormExpired)
    gone = form.Draft(10_000_000)
    assert isinstance(await service.next_step(CUSTOMER, gone, form.Typed("x")), form.FormExpired)


# ------------------------------------------------------------ any typed text

# (service, answers that reach each of its fields), so every kind of field is typed into.
_FORMS: dict[str, list[tuple[str, str]]] = {
    "101": [("link", LINK), ("quantity", "1000"), ("runs", "5"), ("interval", "30")],
    "106": [("link", LINK), ("comments", "nice\ngreat\nwow\ncool\nyes")],
    "116": [("username", "alice"), ("min", "100"), ("max", "200"), ("posts", "10"),
            ("old_posts", "0"), ("delay", "0"), ("expiry", "31/12/2099")],
    "801": [("link", "https://example.com"), ("quantity", "1000"), ("runs", "2"),
            ("interval", "30"), ("country", "US"), ("device", "5"), ("type_of_traffic", "1"),
            ("google_keyword", "shoes")],
    "403": [("link", "https://t.me/channel/5"), ("quantity", "100"), ("answer_number", "1")],
}
_TYPED = st.one_of(
    st.text(),
    st.text(alphabet="0123456789 ,.kKm-/", max_size=12),
    st.sampled_from(["1000", "1k", "0", "-1", "99999999999", "https://", LINK, "@durov", "US",
                     "31/12/2099", "01/01/2000", "\n", " ", "a\nb", "https://[::1"]),
    st.integers(min_value=20_001, max_value=25_000).map(lambda n: "1" * n),
    # Answers some field takes (padded as people send them), so the form moves on too.
    st.sampled_from(sorted({value for answers in _FORMS.values() for _, value in answers}))
    .flatmap(lambda value: st.sampled_from([value, f" {value} ", f"{value}\n"])),
)


class _PrivateLoop:
    """A service on its own event loop, so Hypothesis (which runs examples
    synchronously) can drive the async service once per example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._tmp = tempfile.TemporaryDirectory()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def open(self) -> tuple[OrderService, dict[str, int]]:
        self.sandbox = self.run(start_sandbox(SandboxPanel(pace=60.0)))
        self.client = PanelClient(self.sandbox.url, DEFAULT_KEY, name="test", rate_limit=0,
                                  retry=FAST_RETRY, timeout=5.0)
        self.db = self.run(Database(Path(self._tmp.name) / "shop.sqlite3").open())
        service = self.run(_open_service(self.db, self.client))
        refs = {sid: self.run(_ref(self.db, sid)) for sid in _FORMS}
        return service, refs

    def close(self) -> None:
        self.run(self.db.close())
        self.run(self.client.aclose())
        self.run(self.sandbox.stop())
        self.loop.close()
        self._tmp.cleanup()


@pytest.fixture(scope="module")
def on_a_loop() -> Iterator[tuple[_PrivateLoop, OrderService, dict[str, int]]]:
    private = _PrivateLoop()
    service, refs = private.open()
    yield private, service, refs
    private.close()


@given(data=st.data())
def test_any_typed_text_asks_again_with_why_or_moves_on(
        on_a_loop: tuple[_PrivateLoop, OrderService, dict[str, int]], data: st.DataObject
        ) -> None:
    private, service, refs = on_a_loop
    service_id = data.draw(st.sampled_from(sorted(_FORMS)), label="service")
    answered = data.draw(st.integers(0, len(_FORMS[service_id]) - 1), label="answered")
    before = dict(_FORMS[service_id][:answered])
    draft = form.Draft(refs[service_id], values=dict(before), history=list(before))
    asked, fits = _FORMS[service_id][answered]
    text = data.draw(st.one_of(_TYPED, st.just(fits)), label="typed")

    step = private.run(service.next_step(CUSTOMER, draft, form.Typed(text)))

    assert isinstance(step, form.AskField | form.ConfirmOrder)
    event("asked again" if isinstance(step, form.AskField) and step.wrong_answer is not None
          else f"moved on to {type(step).__name__}")
    if isinstance(step, form.AskField) and step.wrong_answer is not None:
        assert step.field.name == asked
        assert step.wrong_answer.render()  # says why, in words
        assert (draft.values, draft.history) == (before, list(before))  # nothing taken
    else:
        assert draft.history == [*before, asked] and asked in draft.values
        assert not isinstance(step, form.AskField) or (
            step.field.name != asked and step.no_longer_fits is None)
