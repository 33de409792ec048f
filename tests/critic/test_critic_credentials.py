"""Which key a critic server receives, and URL passwords kept out of messages."""

from __future__ import annotations

import pytest

from gcr.critic.backends.openai_http import is_openai_api, normalize_base_url
from gcr.critic.loading import load_critic
from gcr.errors import ConfigError, CriticResponseError, RunError
from gcr.redact import redact_data, redact_text
from stubs.critic_server import GOOD_T2I_ANSWER


def _sent_key(stub) -> str:
    return stub.chat_requests[-1].headers["authorization"]


def test_openai_api_key_is_not_sent_to_another_server(critic_stub, monkeypatch):
    from PIL import Image

    monkeypatch.delenv("GCR_CRITIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-own-openai-key")
    critic_stub.enqueue(GOOD_T2I_ANSWER, times=3)
    image = Image.new("RGB", (8, 8))

    load_critic(critic_stub.url, model="stub-critic", max_retries=0).critique("a cube", image)
    assert "sk-users-own-openai-key" not in _sent_key(critic_stub)
    assert all("sk-users" not in r.headers.get("authorization", "") for r in critic_stub.requests)

    monkeypatch.setenv("GCR_CRITIC_API_KEY", "critic-key")
    load_critic(critic_stub.url, model="stub-critic", max_retries=0).critique("a cube", image)
    assert _sent_key(critic_stub) == "Bearer critic-key"

    # Named explicitly, the OpenAI key goes where the user sends it.
    critic = load_critic(critic_stub.url, model="stub-critic", max_retries=0, api_key_env="OPENAI_API_KEY")
    critic.critique("a cube", image)
    assert _sent_key(critic_stub) == "Bearer sk-users-own-openai-key"


@pytest.mark.parametrize(
    ("url", "openai"),
    [
        ("https://api.openai.com/v1", True),
        ("https://API.openai.com", True),
        ("http://api.openai.com/v1", False),  # not over plain http
        ("https://api.openai.com.evil.example/v1", False),
        ("https://evil.example/api.openai.com", False),
        ("http://127.0.0.1:8000/v1", False),
    ],
)
def test_only_openais_own_api_counts_as_openai(url, openai):
    assert is_openai_api(url) is openai


def test_redaction_masks_passwords_only():
    assert redact_text("see http://bob:hunter2@host:8000/v1 now") == "see http://bob:***@host:8000/v1 now"
    assert redact_text("https://u:p@ss@host/x") == "https://u:***@host/x"
    assert redact_text("http://token@host/v1") == "http://token@host/v1"  # no password to hide
    assert redact_text("mail bob@example.com; http://host/v1") == "mail bob@example.com; http://host/v1"
    data = {"critic": "http://a:b@h/v1", "list": ["x", "http://c:d@h"], "n": 3, "none": None}
    assert redact_data(data) == {
        "critic": "http://a:***@h/v1",
        "list": ["x", "http://c:***@h"],
        "n": 3,
        "none": None,
    }


def test_every_gcr_error_hides_url_passwords():
    for error in (CriticResponseError, RunError, ConfigError):
        exc = error("the critic server at http://me:topsecret@10.0.0.1/v1 failed")
        assert "topsecret" not in str(exc) and "topsecret" not in repr(exc)
        assert "http://me:***@10.0.0.1/v1" in str(exc)


def test_a_masked_password_asks_for_the_url_again():
    with pytest.raises(ConfigError, match="give the full URL again with --critic"):
        normalize_base_url("http://me:***@10.0.0.1:8000/v1")


def test_verbose_logs_of_the_cli_hide_url_passwords(critic_stub, monkeypatch, capsys, tmp_path):
    import io
    import sys

    from PIL import Image

    from gcr.cli.app import main

    image = tmp_path / "cube.png"
    Image.new("RGB", (8, 8)).save(image)
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    url = critic_stub.url.replace("http://", "http://me:hunter2-pw@")
    argv = ["gcr", "-vv", "critique", str(image), "--prompt", "a cube"]
    argv += ["--critic", url, "--model", "stub-critic"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out, err = capsys.readouterr()
    shown = "".join((out + err).split())
    assert "HTTPRequest" in shown  # httpx logged its requests, URL included ...
    assert "me:***@127.0.0.1" in shown and "hunter2-pw" not in shown  # ... without the password
