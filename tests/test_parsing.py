"""Every response variant of SPEC.md, read by the lenient parsers.

These bodies are copied from the panel docs and SPEC.md; the dialects the sandbox
serves are exercised over HTTP in test_panel_client.py.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from bot.panel import CancelAccepted, ItemError, OrderState, RefillState, RejectReason
from bot.panel.errors import classify
from bot.panel.parsing import (
    MalformedResponse,
    decode_body,
    parse_add,
    parse_balance,
    parse_cancel,
    parse_multi_refill,
    parse_multi_refill_status,
    parse_multi_status,
    parse_order_status,
    parse_refill,
    parse_refill_status,
    parse_services,
    top_level_error,
)


def test_services_canonical_doc_example() -> None:
    body = decode_body("""[{"service":1,"name":"Followers","type":"Default","category":"First Category",
      "rate":"0.90","min":"50","max":"10000","refill":true,"cancel":true},
     {"service":2,"name":"Comments","type":"Custom Comments","category":"Second Category",
      "rate":"8","min":"10","max":"1500","refill":false,"cancel":true}]""")
    first, second = parse_services(body)
    assert (first.id, first.type, first.rate, first.min, first.max) == ("1", "Default",
                                                                        Decimal("0.90"), 50, 10000)
    assert first.refill and first.cancel and not first.dripfeed
    assert second.type == "Custom Comments" and second.order_type is not None
    assert not second.refill and second.cancel


def test_services_variants_from_every_dialect() -> None:
    body = decode_body("""[
      {"service":"308","name":"A","type":"custom_comments","category":"C","rate":7,"min":10,"max":20,
       "dripfeed":1,"desc":"Line one"},
      {"service":2,"name":"B","category":"C","rate":"0.73","min":"100","max":"10000",
       "dripfeed":false,"refill":false,"cancel":false,"description":"-"},
      {"service":3,"name":"C","type":"default","category":"C","rate":"1","min":"1","max":"2"},
      {"service":4,"name":"D","type":"Mentions Users Followers","category":"C","rate":"1","min":"1","max":"2",
       "refill":true,"extra_field":{"nested":[1,2]}},
      {"service":5,"name":"E","type":"Invites From Groups","category":"C","rate":"1","min":"1","max":"2"},
      {"service":6,"name":"F","type":"SEO2","category":"C","rate":"1","min":"1","max":"2"},
      {"service":7,"name":"G","type":"Brand New Type","category":"C","rate":"1","min":"1","max":"2"}
    ]""")
    services = {s.id: s for s in parse_services(body)}
    assert services["308"].type == "Custom Comments"
    assert services["308"].rate == Decimal(7) and services["308"].dripfeed
    assert services["308"].description == "Line one"
    assert services["2"].type == "Default"  # missing type
    assert services["2"].description == ""  # "-" is no description
    assert services["3"].type == "Default"
    assert services["4"].type == "Mentions User Followers" and services["4"].refill
    assert not services["4"].cancel  # missing flag
    assert services["5"].type == "Invites from Groups"
    assert services["6"].type == "SEO"
    assert services["7"].type == "Brand New Type" and services["7"].order_type is None


def test_services_empty_smartpanel_answer_and_bad_items() -> None:
    assert parse_services({"status": "success", "data": "Empty Data"}) == []
    services = parse_services([{"service": 1, "rate": "x"}, "junk",
                               {"service": 2, "rate": "1", "min": "1", "max": "5"}])
    assert [s.id for s in services] == ["2"]
    with pytest.raises(MalformedResponse):
        parse_services({"unexpected": True})


def test_rates_never_become_floats() -> None:
    services = parse_services(decode_body('[{"service":1,"rate":0.1,"min":1,"max":2}]'))
    assert isinstance(services[0].rate, Decimal) and services[0].rate == Decimal("0.1")


@pytest.mark.parametrize("body", [
    '{"order": 23501}', '{"order":"23501"}', '{"status":"success","order":23501}',
    '{"status":"success","message":"Order placed","order":23501}',
])
def test_add_success_variants(body: str) -> None:
    assert parse_add(decode_body(body)) == "23501"


def test_single_status_and_typo_field() -> None:
    status = parse_order_status(decode_body(
        '{"charge":"0.27819","statt_count":"3572","status":"Partial","remains":"157","currency":"USD"}'))
    assert not isinstance(status, ItemError)
    assert status.status is OrderState.PARTIAL and status.is_final
    assert (status.charge, status.start_count, status.remains) == (Decimal("0.27819"), 3572, 157)


def test_multi_status_dict_with_object_and_string_errors() -> None:
    body = decode_body("""{"1":{"charge":"1.03841045","start_count":1,"status":"In progress","remains":287,
       "currency":"EUR"},"10":{"error":"Incorrect order ID"},"11":"Incorrect order ID",
       "12":{"order":12,"status":"Processing","charge":"1","remains":"0","start_count":"0"}}""")
    results = parse_multi_status(body)
    first = results["1"]
    assert not isinstance(first, ItemError)
    assert first.charge == Decimal("1.03841045") and first.currency == "EUR"
    assert first.status is OrderState.IN_PROGRESS and not first.is_final
    assert results["10"] == ItemError("Incorrect order ID", RejectReason.BAD_ORDER)
    assert results["11"] == ItemError("Incorrect order ID", RejectReason.BAD_ORDER)
    assert not isinstance(results["12"], ItemError)
    assert results["12"].status is OrderState.IN_PROGRESS


def test_multi_status_as_list_laravel_clone() -> None:
    body = [{"order": 5, "status": "completed", "charge": 2, "remains": 0, "start_count": 10},
            {"order": "6", "status": "inprogress"}]
    results = parse_multi_status(body)
    assert set(results) == {"5", "6"}
    assert results["5"].status is OrderState.COMPLETED  # type: ignore[union-attr]
    assert results["6"].status is OrderState.IN_PROGRESS  # type: ignore[union-attr]


@pytest.mark.parametrize(("raw", "state"), [
    ("Pending", OrderState.PENDING), ("pending", OrderState.PENDING),
    ("In progress", OrderState.IN_PROGRESS), ("in-progress", OrderState.IN_PROGRESS),
    ("inprogress", OrderState.IN_PROGRESS), ("Processing", OrderState.IN_PROGRESS),
    ("Active", OrderState.IN_PROGRESS), ("Completed", OrderState.COMPLETED),
    ("Partial", OrderState.PARTIAL), ("Canceled", OrderState.CANCELED),
    ("Cancelled", OrderState.CANCELED), ("Refunded", OrderState.CANCELED),
    ("refunds", OrderState.CANCELED), ("Fail", OrderState.FAILED), ("Error", OrderState.FAILED),
    ("0", OrderState.PENDING), ("3", OrderState.PARTIAL), ("5", OrderState.CANCELED),
])
def test_every_status_word(raw: str, state: OrderState) -> None:
    # With remains: a Partial without them is not a usable status (issue 9).
    status = parse_order_status({"status": raw, "remains": "10"})
    assert not isinstance(status, ItemError)
    assert status.status is state and status.raw_status == raw and status.recognised


def test_unknown_status_is_kept_raw_and_not_final() -> None:
    status = parse_order_status({"status": "Awaiting moderation", "remains": "10"})
    assert not isinstance(status, ItemError)
    assert status.raw_status == "Awaiting moderation"
    assert not status.recognised and not status.is_final


def test_refill_variants() -> None:
    assert parse_refill({"refill": "1"}) == "1"
    assert parse_refill({"order": "12", "refill": "1", "message": "received"}) == "1"
    assert parse_refill({"success": "Your order will be refill asap", "refill": 12345}) == "12345"
    assert parse_refill({"status": "success", "refill": 7}) == "7"
    multi = parse_multi_refill([{"order": 1, "refill": 1}, {"order": 2, "refill": 2},
                                {"order": 3, "refill": {"error": "Order cannot be refilled"},
                                 "message": "Order cannot be refilled"}])
    assert multi["1"] == "1" and multi["2"] == "2"
    assert multi["3"] == ItemError("Order cannot be refilled", RejectReason.NOT_REFILLABLE)
    as_text = parse_multi_refill([{"order": 1, "refill": "17"}, {"order": 2, "refill": "Error"}])
    assert as_text["1"] == "17"  # a refill id may come as text
    assert isinstance(as_text["2"], ItemError)  # a bare message is still an item error


def test_refill_status_variants() -> None:
    single = parse_refill_status({"status": "Completed"})
    assert not isinstance(single, ItemError) and single.status is RefillState.COMPLETED
    with_id = parse_refill_status({"refill": 2, "status": "Completed"})
    assert not isinstance(with_id, ItemError) and with_id.is_final
    not_found = parse_refill_status({"status": {"error": "Refill not found"}})
    assert not_found == ItemError("Refill not found", RejectReason.REFILL_NOT_FOUND)
    multi = parse_multi_refill_status([{"refill": 1, "status": "Completed"},
                                       {"refill": 2, "status": "Rejected"},
                                       {"refill": 3, "status": {"error": "Refill not found"}},
                                       {"refill": "4", "status": "Refilling"},
                                       {"refill": 5, "status": "awaiting"}])
    assert multi["2"].status is RefillState.REJECTED  # type: ignore[union-attr]
    assert isinstance(multi["3"], ItemError)
    assert multi["4"].status is RefillState.IN_PROGRESS  # type: ignore[union-attr]
    assert multi["5"].status is RefillState.PENDING  # type: ignore[union-attr]


def test_cancel_variants() -> None:
    results = parse_cancel([{"order": 9, "cancel": {"error": "Incorrect order ID"}},
                            {"order": 2, "cancel": 1}])
    assert results["9"] == ItemError("Incorrect order ID", RejectReason.BAD_ORDER)
    assert results["2"] == CancelAccepted()
    message = parse_cancel({"order": 2, "cancel": "Your cancellation request has been received."})
    assert message["2"] == CancelAccepted("Your cancellation request has been received.")
    keyed = parse_cancel({"4218": {"cancel": "requested"}, "4219": {"error": "Cannot cancel"}})
    assert isinstance(keyed["4218"], CancelAccepted)
    assert keyed["4219"] == ItemError("Cannot cancel", RejectReason.NOT_CANCELABLE)


@pytest.mark.parametrize(("body", "amount", "currency"), [
    ('{"balance":"100.84292","currency":"USD"}', "100.84292", "USD"),
    ('{"balance":"128.60633","currency":"EUR"}', "128.60633", "EUR"),
    ('{"balance":100,"currency":"USD"}', "100", "USD"),
    ('{"status":"success","balance":"5.5","currency":"usd"}', "5.5", "USD"),
])
def test_balance_variants(body: str, amount: str, currency: str) -> None:
    balance = parse_balance(decode_body(body))
    assert balance.amount == Decimal(amount) and balance.currency == currency


def test_lenient_decoding_of_broken_documentation_json() -> None:
    assert decode_body('[{"a": 1,},]') == [{"a": 1}]
    missing_braces = '"1": {"status": "Partial"},\n "10": {"error": "Incorrect order ID"}'
    assert set(decode_body(missing_braces)) == {"1", "10"}
    notice = '<br />\n<b>Notice</b>: Undefined index in <b>api.php</b><br />\n{"order": 5}'
    assert decode_body(notice) == {"order": 5}
    assert decode_body("error=Invalid+API+key") == {"error": "Invalid API key"}


@pytest.mark.parametrize("text", ["", "   ", "<html><title>Just a moment...</title></html>",
                                  "<h1>502 Bad Gateway</h1>", "Internal Server Error", "{'a'"])
def test_garbage_is_malformed(text: str) -> None:
    with pytest.raises(MalformedResponse):
        decode_body(text)


def test_cloudflare_page_is_recognised_as_a_challenge() -> None:
    with pytest.raises(MalformedResponse) as info:
        decode_body("<!DOCTYPE html><title>Just a moment...</title>")
    assert info.value.challenge


def test_top_level_error_only_when_error_is_alone() -> None:
    assert top_level_error({"error": "Incorrect service ID"}) == "Incorrect service ID"
    assert top_level_error({"status": "error", "error": "Bad Link"}) == "Bad Link"
    assert top_level_error({"status": "error", "message": "Invalid action"}) == "Invalid action"
    assert top_level_error({"order": 1, "error": "note"}) is None
    assert top_level_error([{"error": "x"}]) is None


@pytest.mark.parametrize(("message", "reason"), [
    ("Invalid API key", RejectReason.BAD_KEY), ("Incorrect API key", RejectReason.BAD_KEY),
    ("api_is_disable_for_this_user_or_user_not_found_contact_the_support", RejectReason.BAD_KEY),
    ("Incorrect service ID", RejectReason.BAD_SERVICE),
    ("neworder.error.incorrect_service_id", RejectReason.BAD_SERVICE),
    ("service_id_does_not_exists", RejectReason.BAD_SERVICE),
    ("Incorrect link", RejectReason.BAD_LINK), ("Bad Link", RejectReason.BAD_LINK),
    ("neworder.error.link", RejectReason.BAD_LINK),
    ("Quantity less than minimal 1000", RejectReason.QUANTITY),
    ("Quantity less than maximum 500", RejectReason.QUANTITY),
    ("neworder.error.max_quantity", RejectReason.QUANTITY),
    ("Quantity must to be greater than or equal to minimum amount 10", RejectReason.QUANTITY),
    ("Not enough funds on balance", RejectReason.NOT_ENOUGH_FUNDS),
    ("neworder.error.not_enough_funds", RejectReason.NOT_ENOUGH_FUNDS),
    ("You have active order with this link. Please wait until order being completed.",
     RejectReason.DUPLICATE),
    ("neworder.error.link_duplicate", RejectReason.DUPLICATE),
    ("This services does not support Dripfeed feature!", RejectReason.DRIPFEED),
    ("Invalid Interval in minutes", RejectReason.DRIPFEED),
    ("Incorrect order ID", RejectReason.BAD_ORDER),
    ("Refill not found", RejectReason.REFILL_NOT_FOUND),
    ("Order not eligible for refill.", RejectReason.NOT_REFILLABLE),
    ("You are not eligible to send refill request.", RejectReason.NOT_REFILLABLE),
    ("You are not eligible to cancel this order.", RejectReason.NOT_CANCELABLE),
    ("Incorrect request", RejectReason.BAD_REQUEST), ("Invalid action", RejectReason.BAD_REQUEST),
    ("this_action_is_invalid", RejectReason.BAD_REQUEST),
    ("Something new", RejectReason.OTHER),
])
def test_error_catalogue(message: str, reason: RejectReason) -> None:
    assert classify(message) is reason


# ------------------------------------------------------------ hostile numbers (issue 9)

HOSTILE_NUMBERS = ["1e500000", "-1e999999", "1E5", "NaN", "Infinity", "9" * 5_000,
                   "1" + "0" * 30, "0x10", "1.2.3", "0,5", True, [], {"a": 1}]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=range(len(HOSTILE_NUMBERS)))
def test_a_hostile_number_is_an_error_of_its_item_only(value: object) -> None:
    started = time.thread_time()  # CPU, not wall: a loaded machine must not fail it
    results = parse_multi_status({"1": {"status": "In progress", "remains": value},
                                  "2": {"status": "Canceled", "remains": "1,000"}})
    assert time.thread_time() - started < 0.5  # int(Decimal("1e500000")) took 31 s
    assert isinstance(results["1"], ItemError)
    assert results["1"].reason is RejectReason.UNREADABLE and "remains" in results["1"].message
    assert results["2"] == parse_order_status({"status": "Canceled", "remains": 1000})


@pytest.mark.parametrize("token", ["1e500000", "1" + "0" * 30, "9" * 10_000, "NaN", "-Infinity",
                                   "1.5e3"])
def test_raw_json_numbers_are_bounded_before_any_conversion(token: str) -> None:
    started = time.thread_time()
    body = decode_body('{"1": {"status": "In progress", "remains": ' + token + '},'
                       ' "2": {"status": "Completed", "remains": 0}}')
    results = parse_multi_status(body)
    assert isinstance(results["1"], ItemError) and not isinstance(results["2"], ItemError)
    with pytest.raises(MalformedResponse):
        parse_balance(decode_body('{"balance": ' + token + ', "currency": "USD"}'))
    assert time.thread_time() - started < 0.5


@pytest.mark.parametrize(("value", "amount"), [
    ("1.03841045", Decimal("1.03841045")), ("0.10000000000", Decimal("0.1")),
    ("1,000.50", Decimal("1000.50")), (" 5 ", Decimal(5)), (Decimal("-2.5"), Decimal("-2.5")),
    ("1000000000000", Decimal(10**12)),
])
def test_money_within_bounds_is_read_exactly(value: object, amount: Decimal) -> None:
    status = parse_order_status({"status": "Completed", "charge": value, "remains": 0})
    assert not isinstance(status, ItemError) and status.charge == amount


@pytest.mark.parametrize("value", ["0.123456789", "1000000000001", "1e3", Decimal("1E+20")])
def test_money_out_of_bounds_is_unreadable(value: object) -> None:
    status = parse_order_status({"status": "Completed", "charge": value, "remains": 0})
    assert isinstance(status, ItemError) and status.reason is RejectReason.UNREADABLE


def test_deep_nesting_is_malformed_not_a_recursion_error() -> None:
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 30 + "1" + "}" * 30):
        with pytest.raises(MalformedResponse, match="nested"):
            decode_body(text)
    assert decode_body('{"1": {"status": "Partial", "remains": 1}}')  # real depth is fine


def test_items_without_a_status_or_an_id_spoil_only_themselves() -> None:
    results = parse_multi_status({"1": {"remains": "5"}, "2": {"status": None},
                                  "3": {"status": "Completed", "remains": 0}, "x" * 100: {}})
    assert results["1"].reason is RejectReason.UNREADABLE  # type: ignore[union-attr]
    assert results["2"].reason is RejectReason.UNREADABLE  # type: ignore[union-attr]
    assert not isinstance(results["3"], ItemError) and len(results) == 3
    listed = parse_multi_status([{"status": "Completed"}, {"order": 5, "status": "Pending"}])
    assert set(listed) == {"5"}


def test_a_partial_without_remains_is_unreadable() -> None:
    status = parse_order_status({"status": "Partial", "charge": "1"})
    assert isinstance(status, ItemError) and status.reason is RejectReason.UNREADABLE
    assert "Partial" in status.raw
    readable = parse_order_status({"status": "Partial", "remains": "0"})
    assert not isinstance(readable, ItemError) and readable.is_final


def test_unusable_services_are_skipped_and_counted() -> None:
    body = decode_body('[{"service": 1, "rate": "1", "min": 1, "max": 100000000000000000000},'
                       ' {"service": 2, "rate": "1e400000", "min": 1, "max": 10},'
                       ' {"service": 3, "rate": 1e400000, "min": 1, "max": 10},'
                       ' {"service": 4, "rate": "1", "min": "abc", "max": 10},'
                       ' {"service": 5, "rate": "1", "min": 50, "max": 10},'
                       ' {"service": 6, "rate": "0.5", "min": 10, "max": 1000}]')
    services = parse_services(body)
    assert [s.id for s in services] == ["6"] and services.skipped == 5


def test_panel_texts_are_capped() -> None:
    [service] = parse_services([{"service": 1, "rate": "1", "min": 1, "max": 2,
                                 "name": "N" * 100_000, "category": "C" * 100_000,
                                 "description": "D" * 100_000, "type": "T" * 100_000}])
    assert len(service.name) == 1_000 and len(service.category) == 1_000
    assert len(service.description) == 5_000 and len(service.type) <= 200
    error = parse_multi_status({"1": "E" * 1_000_000})["1"]
    assert isinstance(error, ItemError) and len(error.message) <= 500
