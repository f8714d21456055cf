"""The one redaction: every form a secret can take in a text is masked."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from bot.observability import redaction


def test_registered_secrets_are_masked_in_every_form() -> None:
    token = "123456:AAsecret-token_value"
    redaction.register(token, None, "", "abc")  # empty and short values are ignored
    url = f"https://api.telegram.org/bot{token}/getUpdates"
    form = urlencode({"key": token, "action": "add"})
    for text in (url, form, f"quoted {quote(token, safe='')}"):
        masked = redaction.redact(text)
        assert "AAsecret-token_value" not in masked and "AAsecret" not in masked
        assert redaction.MASK in masked
    assert redaction.redact("abc def") == "abc def"
