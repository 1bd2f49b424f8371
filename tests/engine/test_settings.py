from datetime import time, timedelta
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.settings import (
    Settings,
    SimulatorIntegration,
    SinchSmsIntegration,
    load_settings,
    write_starter_settings,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "SCENARIST_TEST_SINCH_TOKEN"


def write(folder, text, name="scenarist.yaml"):
    path = folder / name
    path.write_text(text)
    return path


def sender_lines(count, **extra):
    fields = "".join(f", {key}: {value}" for key, value in extra.items())
    return "".join(
        f"  - {{name: s{i}, number: '+1202555{i:04d}', type: 10dlc{fields}}}\n"
        for i in range(count)
    )


def test_defaults_of_keys_left_out():
    settings = Settings()
    assert settings.timezone == "UTC"
    assert settings.default_sms_provider == "simulator"
    assert isinstance(settings.integrations["simulator"], SimulatorIntegration)
    assert settings.senders == []
    assert settings.sender(None) is None
    assert settings.consent_categories == ["sms_marketing"]
    assert settings.frequency_policies == {}
    assert settings.silent_hours is None
    assert settings.batch_size == 5000


def test_default_path_is_the_environment_variable_then_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCENARIST_SETTINGS", raising=False)
    with pytest.raises(ConfigError, match=f"no settings file at {tmp_path / 'scenarist.yaml'};"):
        load_settings()  # no scenarist.yaml here

    write(tmp_path, "timezone: Europe/Prague\n")
    assert load_settings().timezone == "Europe/Prague"

    other = write(tmp_path, "timezone: Asia/Tokyo\n", name="other.yaml")
    monkeypatch.setenv("SCENARIST_SETTINGS", str(other))
    assert load_settings().timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("given", "environment", "looked_at", "init"),
    [
        # a typo in --settings
        ("nope.yaml", None, "nope.yaml", "scenarist init --settings nope.yaml"),
        # a folder is no settings file
        (".", None, ".", "scenarist init --settings ."),
        # $SCENARIST_SETTINGS naming a file that is not there
        (None, "elsewhere.yaml", "elsewhere.yaml", "scenarist init --settings elsewhere.yaml"),
        # none in the folder
        (None, None, "scenarist.yaml", "scenarist init`"),
    ],
)
def test_a_missing_settings_file_is_an_error_naming_the_path(
    tmp_path, monkeypatch, given, environment, looked_at, init
):
    monkeypatch.chdir(tmp_path)
    if environment is None:
        monkeypatch.delenv("SCENARIST_SETTINGS", raising=False)
    else:
        monkeypatch.setenv("SCENARIST_SETTINGS", environment)
    with pytest.raises(ConfigError) as caught:
        load_settings(given)
    message = str(caught.value)
    where = (tmp_path / looked_at).resolve()
    assert message.startswith(f"{looked_at}: no settings file at {where};")
    assert f"`{init}" in message


def test_the_starter_settings_are_the_shipped_ones_and_load(tmp_path):
    path = tmp_path / "scenarist.yaml"
    write_starter_settings(path)
    assert path.read_text() == (ROOT / "scenarist.yaml").read_text()
    settings = load_settings(path)
    assert settings.database_url == f"sqlite:///{tmp_path / '.scenarist' / 'scenarist.db'}"
    assert settings.default_sms_provider == "simulator"


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ("timezone: Asia/Tokyo\n", "a file is already there; nothing written"),
        (None, "cannot write it: No such file or directory"),
    ],
)
def test_starter_settings_never_overwrite(tmp_path, existing, message):
    path = tmp_path / "scenarist.yaml" if existing else tmp_path / "missing" / "scenarist.yaml"
    if existing:
        path.write_text(existing)
    with pytest.raises(ConfigError, match=message):
        write_starter_settings(path)
    if existing:
        assert path.read_text() == existing


def test_empty_file_means_defaults(tmp_path):
    settings = load_settings(write(tmp_path, "# nothing set yet\n"))
    assert settings.model_dump(exclude={"database_url"}) == Settings().model_dump(
        exclude={"database_url"}
    )


def test_shipped_settings_load():
    settings = load_settings(ROOT / "scenarist.yaml")
    assert settings.timezone == "America/New_York"
    assert settings.default_sms_provider == "simulator"
    assert settings.sender(None).name == "main"
    assert settings.sender("shortcode").type == "short_code"
    assert settings.sender("nope") is None
    assert settings.consent_categories == ["sms_marketing", "transactional"]
    assert settings.frequency_policies["default"].max_messages == 3
    assert settings.frequency_policies["weekly"].window == timedelta(days=7)
    assert settings.silent_hours.start == time(21, 0)
    assert settings.silent_hours.end == time(8, 0)
    # the relative sqlite path is anchored at the settings file's folder
    assert settings.database_url == f"sqlite:///{ROOT / '.scenarist' / 'scenarist.db'}"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        pytest.param(
            "senders:\n  - {name: a, number: '40404', type: mms}\n",
            "senders.0.type",
            "Input should be 'short_code', 'toll_free', '10dlc' or 'long_number'",
            id="bad-sender-type",
        ),
        pytest.param(
            "senders:\n" + sender_lines(101),
            "senders",
            "at most 100 predefined senders per project",
            id="101-senders",
        ),
        pytest.param(
            "senders:\n" + sender_lines(2, default="true"),
            "senders",
            "at most one sender can be the default",
            id="two-default-senders",
        ),
        pytest.param(
            "senders:\n"
            "  - {name: main, number: '+12025550100', type: 10dlc}\n"
            "  - {name: main, number: '40404', type: short_code}\n",
            "senders",
            "sender names must be unique",
            id="duplicate-sender-names",
        ),
        pytest.param(
            # the model-level check has no key of its own; its message names it
            "default_sms_provider: sinch-us\n",
            "(top level)",
            "default_sms_provider 'sinch-us' is not one of the integrations: ['simulator']",
            id="default-provider-not-an-integration",
        ),
        pytest.param(
            "integrations:\n  sinch-us: {type: sinch_sms, service_plan_id: p}\n"
            "default_sms_provider: sinch-us\n",
            "integrations.sinch-us",
            "set exactly one of api_token_env or api_token_block",
            id="sinch-without-token-source",
        ),
        pytest.param(
            "integrations:\n"
            "  sinch-us: {type: sinch_sms, service_plan_id: p, api_token_env: T,"
            " api_token_block: b}\n"
            "default_sms_provider: sinch-us\n",
            "integrations.sinch-us",
            "set exactly one of api_token_env or api_token_block",
            id="sinch-with-both-token-sources",
        ),
        pytest.param(
            "integrations:\n  sms: {type: carrier_pigeon}\ndefault_sms_provider: sms\n",
            "integrations.sms",
            "does not match any of the expected tags",
            id="unknown-integration-type",
        ),
        pytest.param(
            "databse_url: sqlite:///x.db\n",
            "databse_url",
            "Extra inputs are not permitted",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "timezone: Mars/Olympus_Mons\n",
            "timezone",
            "unknown time zone 'Mars/Olympus_Mons'",
            id="bad-timezone",
        ),
        pytest.param(
            # a folder of the tz database, not a zone
            "timezone: Europe\n",
            "timezone",
            "unknown time zone 'Europe'",
            id="timezone-folder",
        ),
        pytest.param(
            "frequency_policies:\n  default: {max_messages: 3, window: 1y}\n",
            "frequency_policies.default.window",
            "invalid duration '1y'",
            id="bad-frequency-window",
        ),
        pytest.param(
            "frequency_policies:\n  default: {max_messages: -1, window: 1d}\n",
            "frequency_policies.default.max_messages",
            "greater than or equal to 0",
            id="negative-frequency-cap",
        ),
        pytest.param(
            "batch_size: 0\n",
            "batch_size",
            "greater than or equal to 1",
            id="empty-batches",
        ),
        pytest.param(
            # half of basic auth would leave callbacks unauthenticated without a word
            "webhooks: {basic_auth_username: hooks}\n",
            "webhooks",
            "set both basic_auth_username and basic_auth_password_env, or neither",
            id="basic-auth-without-password",
        ),
        pytest.param(
            "webhooks: {basic_auth_password_env: HOOK_PASSWORD}\n",
            "webhooks",
            "set both basic_auth_username and basic_auth_password_env, or neither",
            id="basic-auth-without-username",
        ),
    ],
)
def test_invalid_settings_name_the_file_and_key(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}"), message
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # YAML syntax
        ("timezone: [UTC\n", "not valid YAML"),
        # a list at the top
        ("- timezone: UTC\n", "the top level must be a mapping"),
    ],
)
def test_unreadable_settings_name_the_file(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: {fragment}")


SINCH = (
    "integrations:\n"
    f"  sinch-us: {{type: sinch_sms, service_plan_id: plan-1, api_token_env: {TOKEN_ENV}}}\n"
    "default_sms_provider: sinch-us\n"
)


def test_api_token_is_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret-t0ken")
    settings = load_settings(write(tmp_path, SINCH))
    integration = settings.integrations["sinch-us"]
    assert isinstance(integration, SinchSmsIntegration)
    assert integration.api_token().get_secret_value() == "s3cret-t0ken"


@pytest.mark.parametrize(
    "value",
    [
        None,  # unset
        "",  # set but empty
    ],
)
def test_missing_api_token_names_the_variable(tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(TOKEN_ENV, raising=False)
    else:
        monkeypatch.setenv(TOKEN_ENV, value)
    integration = load_settings(write(tmp_path, SINCH)).integrations["sinch-us"]
    with pytest.raises(ConfigError, match=f"environment variable {TOKEN_ENV} is not set"):
        integration.api_token()


def test_api_token_never_appears_in_repr(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret-t0ken")
    settings = load_settings(write(tmp_path, SINCH))
    token = settings.integrations["sinch-us"].api_token()
    for shown in (repr(settings), str(settings), repr(token), str(token)):
        assert "s3cret-t0ken" not in shown
    assert settings.model_dump_json().find("s3cret-t0ken") == -1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # relative to the folder of the settings file
        ("sqlite:///data/app.db", "sqlite:///{folder}/data/app.db"),
        # a parent folder is resolved
        ("sqlite:///../app.db", "sqlite:///{parent}/app.db"),
        # absolute paths are kept
        ("sqlite:////var/lib/app.db", "sqlite:////var/lib/app.db"),
        # the in-memory database is kept
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        # other databases are kept
        ("postgresql+psycopg://user@db/app", "postgresql+psycopg://user@db/app"),
    ],
)
def test_relative_sqlite_url_is_relative_to_the_settings_file(tmp_path, monkeypatch, url, expected):
    folder = tmp_path / "project"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder must not matter
    path = write(folder, f"database_url: '{url}'\n")
    resolved = expected.format(folder=folder.resolve(), parent=tmp_path.resolve())
    assert load_settings(path).database_url == resolved
