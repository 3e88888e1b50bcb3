"""Login settings and the refusal to serve openly on a public address by accident."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.auth import ServeRefused, check_exposure, checker, is_loopback, load_users
from app.cli import cli
from kb.settings import AppSettings, Settings


def test_every_app_setting_is_described() -> None:
    for name, info in AppSettings.model_fields.items():
        assert info.description, name
    assert Settings().app.uploads_enabled is True


def test_users_from_file_and_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    users_file = tmp_path / "users.txt"
    users_file.write_text("# trainers\nana:s3cret:with:colons\n\nli:pw\n")
    monkeypatch.setenv("KB_APP__AUTH_FILE", str(users_file))
    monkeypatch.setenv("KB_APP__USERS", "omar:été,li:override")
    app = Settings().app
    users = load_users(app)
    assert users == {"ana": "s3cret:with:colons", "li": "override", "omar": "été"}
    check = checker(users)
    assert check("omar", "été") and not check("omar", "ete") and not check("nobody", "")
    assert "été" not in str(Settings().describe())  # `kb config` never prints passwords


def test_bad_login_entries_and_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ServeRefused, match="does not exist"):
        load_users(AppSettings(auth_file=tmp_path / "missing.txt"))
    with pytest.raises(ServeRefused, match="user:password"):
        load_users(AppSettings(users="no-colon-here"))


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_public_host_needs_a_login_or_an_explicit_flag() -> None:
    check_exposure("127.0.0.1", {}, AppSettings())
    check_exposure("0.0.0.0", {"ana": "pw"}, AppSettings())
    check_exposure("0.0.0.0", {}, AppSettings(allow_public_without_auth=True))
    with pytest.raises(ServeRefused, match="KB_APP__ALLOW_PUBLIC_WITHOUT_AUTH"):
        check_exposure("0.0.0.0", {}, AppSettings())


def test_kb_serve_refuses_before_loading_anything(settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import app.web

    monkeypatch.setattr(app.web, "warm_up", lambda kbase: pytest.fail("models loaded"))
    result = CliRunner().invoke(cli, ["--data-dir", str(settings.data_dir), "--corpus-dir",
                                      str(settings.corpus_dir), "serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "refusing to serve on 0.0.0.0 without a login" in result.output


@pytest.mark.integration
def test_login_protects_the_page_and_the_source_routes(small_kb) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from gradio_client import Client

    from app.web import launch
    from tests.app.conftest import free_port

    small_kb.settings.app = AppSettings(users="ana:s3cret")
    demo = launch(small_kb, "127.0.0.1", free_port(), block=False, quiet=True)
    try:
        url = demo.local_url  # type: ignore[attr-defined]
        doc_id = small_kb.documents()[0].doc_id
        source = f"{url}kb/source/{doc_id}?start=0&end=10"
        assert httpx.get(source).status_code == 401
        with pytest.raises(ValueError):
            Client(url, auth=("ana", "wrong"), verbose=False)
        client = Client(url, auth=("ana", "s3cret"), verbose=False)
        chat, *_ = client.predict("What is the Bellwether Effect?", [], [], "any", "any", False,
                                  api_name="/ask")
        assert chat[-1]["role"] == "assistant"
        with httpx.Client() as session:
            session.post(f"{url}login", data={"username": "ana", "password": "s3cret"})
            assert session.get(source).status_code == 200
    finally:
        demo.close()
