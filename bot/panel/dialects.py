"""How the sandbox imitates each documented panel (SPEC.md §10, S0 and SP).

A ``Dialect`` is a set of switches; the server consults them where real panels
differ. The five documented panels plus SmartPanel, the best known other server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_TYPES: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    currency: str = "USD"
    types: frozenset[str] | None = ALL_TYPES  # order types the panel sells
    # services
    flags_in_services: bool = True  # refill / cancel keys present
    dripfeed_in_services: str = ""  # "", "bool" or "int"
    description_key: str = ""  # "", "description" or "desc"
    string_service_ids: bool = False
    type_style: str = "title"  # "title" or "snake"
    # status
    multi_start_key: str = "start_count"
    item_error_as_string: bool = False
    order_in_status_items: bool = False
    charge_places: int = 5
    # refill / cancel
    multi_refill: bool = True
    multi_refill_status: bool = True
    refill_message: bool = False
    refill_status_with_id: bool = False
    cancel_supported: bool = True
    cancel_message: bool = False
    # add / balance
    success_status: bool = False  # {"status": "success", ...} on success
    messages: dict[str, str] = field(default_factory=dict)  # error wording overrides

    def message(self, key: str, default: str) -> str:
        return self.messages.get(key, default)


DIALECTS: dict[str, Dialect] = {
    # A current Perfect Panel: the canonical answers plus `dripfeed` and
    # `description` in the service list (as doc 000 shows). The sandbox default.
    "perfectpanel": Dialect("perfectpanel", dripfeed_in_services="bool",
                            description_key="description"),
    # generic-panel.txt (doc 002): the canonical Perfect Panel answers.
    "generic": Dialect("generic"),
    # smmsofia-com.txt (001): canonical answers, the full set of order types.
    "smmsofia": Dialect("smmsofia"),
    # smmsouq-com.txt (004): four order types only.
    "smmsouq": Dialect(
        "smmsouq", types=frozenset({"Default", "Custom Comments", "Subscriptions", "Comment Likes"}),
    ),
    # softaapp-store.txt (000): EUR, drip-feed and description, message strings.
    "softaapp": Dialect(
        "softaapp", currency="EUR", dripfeed_in_services="bool", description_key="description",
        charge_places=8, refill_message=True, refill_status_with_id=True, cancel_message=True,
        types=frozenset({"Default", "Custom Comments", "Mentions", "Mentions with Hashtags",
                         "Mentions Custom List", "Mentions Hashtag", "Mentions User Followers",
                         "Custom Comments Package", "Subscriptions"}),
    ),
    # sosyalbayiniz-net.txt (003, 2020): no refill/cancel flags, `statt_count`, no
    # multi refill, no cancel action, Default orders only.
    "sosyalbayiniz": Dialect(
        "sosyalbayiniz", types=frozenset({"Default"}), flags_in_services=False,
        multi_start_key="statt_count", multi_refill=False, multi_refill_status=False,
        cancel_supported=False,
    ),
    # SmartPanel-style servers [SP]: string ids, snake_case types, `desc`, 0/1
    # drip-feed, {"status":"success"}, bare-string item errors, single refill only.
    "smartpanel": Dialect(
        "smartpanel", dripfeed_in_services="int", description_key="desc",
        string_service_ids=True, type_style="snake", item_error_as_string=True,
        order_in_status_items=True, multi_refill=False, multi_refill_status=False,
        success_status=True,
        messages={
            "bad_key": "api_is_disable_for_this_user_or_user_not_found_contact_the_support",
            "bad_service": "service_id_does_not_exists",
            "bad_link": "Bad Link",
            "min_quantity": "Quantity must to be greater than or equal to minimum amount {min}",
            "max_quantity": "Quantity must to be less than or equal to maximum amount {max}",
            "duplicate": "You have already an active order for this link on this service id, "
                         "please wait until it is completed",
            "bad_action": "this_action_is_invalid",
        },
    ),
}
