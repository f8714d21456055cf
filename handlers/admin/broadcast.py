"""The admin panel's broadcast screens: compose, preview, audience, confirm, progress.

The draft is the admin's own message (its HTML from handlers/views/broadcast.py
``message_html``, so bold and links survive and every attribute value is
escaped; a photo by its file_id). The preview is that same message sent back
to the admin exactly as customers will get it. Confirm carries a one-time token
(FSM data, unique in the table): a double tap is one broadcast. The control
message becomes the progress message, which handlers/outbound/broadcast_progress.py
(run by bot/shop/messaging/broadcasts.py BroadcastWatcher) edits as the counts change.
"""

from __future__ import annotations

import uuid

from aiogram import F
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.config import Settings
from bot.shop.messaging.broadcasts import (
    AUDIENCES,
    MAX_CAPTION,
    MAX_TEXT,
    Broadcasts,
    Draft,
    DraftProblem,
    NoRecipients,
    check_draft,
)
from bot.shop.messaging.notifier import Notifier
from handlers.admin.home import back_button
from handlers.callbacks import AdminBroadcastCb, AdminCb
from handlers.filters import Button
from handlers.routing import AreaRouter
from handlers.views.broadcast import message_html, progress_keyboard, progress_text, state_word
from handlers.views.keyboards import button, edit, keyboard
from handlers.views.text import number

router = AreaRouter(name="admin_broadcast")


class AdminBroadcast(StatesGroup):
    compose = State()
    confirm = State()


def _units(text: str) -> int:
    """Characters as Telegram counts them (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


# ------------------------------------------------------------ screens

def _audience_word(audience: str) -> str:
    return _("everyone") if audience == "all" else _("active in 30 days")


@router.callback_query(Button(AdminCb(area="broadcast")))
async def broadcast_screen(query: CallbackQuery, state: FSMContext,
                           broadcasts: Broadcasts) -> None:
    assert isinstance(query.message, Message)
    await state.clear()
    lines = [_("<b>📣 Broadcast</b>\nSend one message (text, or one photo with a caption) to "
               "every customer, or to those active in the last 30 days.")]
    recent = await broadcasts.recent()
    if recent:
        lines += ["", _("Recent:")] + [
            _("#{id} · {audience} · {queued} queued · {state}").format(
                id=b.id, audience=_audience_word(b.audience), queued=b.queued,
                state=state_word(b, b.finished)) for b in recent]
    await edit(query.message, "\n".join(lines), keyboard(
        [button(_("✍️ New broadcast"), AdminBroadcastCb(action="new"))], back_button()))


@router.callback_query(Button(AdminBroadcastCb(action="new")))
async def new_broadcast(query: CallbackQuery, state: FSMContext) -> None:
    assert isinstance(query.message, Message)
    await state.set_state(AdminBroadcast.compose)
    await state.set_data({})
    await edit(query.message, _(
        "Send the message to broadcast: text (bold, links and the rest are kept, up to "
        "{text} characters) or one photo with a caption (up to {caption} characters).\n"
        "You will see a preview first. /cancel to stop.").format(
            text=MAX_TEXT, caption=MAX_CAPTION),
        keyboard([button(_("⬅ Back"), AdminCb(area="broadcast"))], back_button()))


def _draft(message: Message) -> Draft | None:
    # message_html, not aiogram's html_text: it escapes links' URLs, pre languages
    # and custom emoji ids, so a draft renders exactly as the admin sent it.
    if message.photo:
        caption = message.caption or ""
        return Draft(message_html(caption, message.caption_entities) if caption else "",
                     _units(caption), photo=message.photo[-1].file_id)
    if message.text is not None:
        return Draft(message_html(message.text, message.entities), _units(message.text))
    return None


@router.message(StateFilter(AdminBroadcast.compose, AdminBroadcast.confirm))
async def compose(message: Message, state: FSMContext, broadcasts: Broadcasts,
                  settings: Settings) -> None:
    """A draft (again, in the confirm step: it replaces the one shown)."""
    draft = None if message.media_group_id else _draft(message)
    if draft is None:
        await message.answer(_("A broadcast is a text message or one photo (with a caption). "
                               "Send one of those, or /cancel."))
        return
    problem = check_draft(draft)
    if problem is not None:
        answers = {
            DraftProblem.EMPTY: _("The message is empty. Send some text or a photo."),
            DraftProblem.TEXT_TOO_LONG: _(
                "That text is {length} characters; Telegram allows {limit} in a message. "
                "Shorten it and send it again, or /cancel."),
            DraftProblem.CAPTION_TOO_LONG: _(
                "That caption is {length} characters; Telegram allows {limit} under a photo. "
                "Shorten it and send it again, or /cancel."),
        }
        limit = MAX_CAPTION if draft.photo else MAX_TEXT
        await message.answer(answers[problem].format(length=draft.visible_length, limit=limit))
        return
    try:
        if draft.photo is not None:
            await message.answer_photo(draft.photo, caption=draft.html or None)
        else:
            await message.answer(draft.html)
    except TelegramBadRequest as exc:
        await message.answer(_("Telegram refused this message ({reason}). Send another, or "
                               "/cancel.").format(reason=exc.message[:200]))
        return
    await state.set_state(AdminBroadcast.confirm)
    await state.set_data({"html": draft.html, "length": draft.visible_length,
                          "photo": draft.photo, "token": uuid.uuid4().hex, "audience": "all"})
    text, markup = await _confirm_screen(broadcasts, settings, "all")
    await message.answer(text, reply_markup=markup)


async def _confirm_screen(broadcasts: Broadcasts, settings: Settings,
                          audience: str) -> tuple[str, InlineKeyboardMarkup]:
    sizes = await broadcasts.audience_sizes(settings.admin_ids)
    reach, skipped = sizes[audience]
    text = "\n".join([
        _("☝️ This is how customers will see it."), "",
        ngettext("Audience: <b>{audience}</b> — {reach} customer.",
                 "Audience: <b>{audience}</b> — {reach} customers.", reach).format(
            audience=_audience_word(audience), reach=number(reach)),
        ngettext("{skipped} more blocked the bot or was blocked, and is skipped.",
                 "{skipped} more blocked the bot or were blocked, and are skipped.",
                 skipped).format(skipped=number(skipped)),
        _("Send it?") if reach else _nobody_text()])
    mark = {name: "✅ " if name == audience else "" for name in AUDIENCES}
    # No Send button for nobody: the tap would queue nothing and report an empty broadcast.
    send = (button(_("📣 Send to {n}").format(n=number(reach)), AdminBroadcastCb(action="confirm"))
            if reach else None)
    return text, keyboard(
        [button(_("{mark}Everyone ({n})").format(mark=mark["all"], n=number(sizes["all"][0])),
                AdminBroadcastCb(action="all")),
         button(_("{mark}Active in 30 days ({n})").format(mark=mark["active"],
                                                          n=number(sizes["active"][0])),
                AdminBroadcastCb(action="active"))],
        [b for b in (send, button(_("✖ Discard"), AdminBroadcastCb(action="discard"))) if b],
        back_button())


def _nobody_text() -> str:
    return _("⚠️ Nobody in this audience can get it (admins are left out, and so is whoever "
             "blocked the bot): nothing can be sent. Choose another audience, or ✖ Discard.")


async def _draft_gone(state: FSMContext, callback_answer: CallbackAnswer) -> dict | None:
    data = await state.get_data()
    if await state.get_state() != AdminBroadcast.confirm.state or "token" not in data:
        callback_answer.text = _("This draft was sent or discarded already.")
        callback_answer.show_alert = True
        return None
    return data


@router.callback_query(Button(AdminBroadcastCb(action="all")))
@router.callback_query(Button(AdminBroadcastCb(action="active")))
async def choose_audience(query: CallbackQuery, state: FSMContext, broadcasts: Broadcasts,
                          settings: Settings, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if await _draft_gone(state, callback_answer) is None:
        return
    audience = AdminBroadcastCb.unpack(query.data or "").action
    await state.update_data(audience=audience)
    await edit(query.message, *await _confirm_screen(broadcasts, settings, audience))


@router.callback_query(Button(AdminBroadcastCb(action="discard")))
async def discard(query: CallbackQuery, state: FSMContext,
                  callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    if await _draft_gone(state, callback_answer) is None:
        return
    await state.clear()
    await edit(query.message, _("Draft discarded; nothing was sent."), keyboard(
        [button(_("⬅ Back"), AdminCb(area="broadcast"))], back_button()))


@router.callback_query(Button(AdminBroadcastCb(action="confirm")))
async def confirm(query: CallbackQuery, state: FSMContext, broadcasts: Broadcasts,
                  settings: Settings, notifier: Notifier, callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    data = await _draft_gone(state, callback_answer)
    if data is None:
        return
    draft = Draft(str(data["html"]), int(data["length"]), data.get("photo"))
    audience = str(data.get("audience", "all"))
    try:
        broadcast, created = await broadcasts.create(
            admin_id=query.from_user.id, token=str(data["token"]), draft=draft,
            audience=audience, exclude=settings.admin_ids,
            progress_chat_id=query.message.chat.id, progress_message_id=query.message.message_id)
    except NoRecipients:  # the audience emptied since the screen was shown
        callback_answer.text = _("Nobody in this audience can get it: nothing was sent.")
        callback_answer.show_alert = True
        await edit(query.message, *await _confirm_screen(broadcasts, settings, audience))
        return
    await state.clear()
    if created:
        notifier.wake()
    counts = await broadcasts.counts(broadcast)
    await edit(query.message, progress_text(broadcast, counts),
               progress_keyboard(broadcast, False))


@router.callback_query(AdminBroadcastCb.filter(F.action == "cancel"))
async def cancel(query: CallbackQuery, callback_data: AdminBroadcastCb, broadcasts: Broadcasts,
                 callback_answer: CallbackAnswer) -> None:
    assert isinstance(query.message, Message)
    dropped = await broadcasts.cancel(callback_data.id, query.from_user.id)
    broadcast = await broadcasts.get(callback_data.id)
    if dropped is None or broadcast is None:
        callback_answer.text = _("That broadcast is not running any more.")
        callback_answer.show_alert = True
        return
    callback_answer.text = _("Canceled: {n} copies will not be sent.").format(n=dropped)
    await edit(query.message, progress_text(broadcast, await broadcasts.counts(broadcast)),
               None)
