"""gitsync.yaml: every mistake is one `gitsync.yaml:line:col:` line, exit 1, nothing sent, no
traceback, and no message ever quotes a value of the file (it may hold a misplaced secret)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitsync import config
from gitsync.errors import ConfigError
from tests.conftest import run_cli

CANARY = "SKCANARY-do-not-print"

CASES = {
    # the cases
    "targets:\n  prod:\n    url: 'http://[::1'\n    org_id: o\n    user_id: u\n": (
        "gitsync.yaml:3:10: targets.prod.url: must be 'embedded' or an address such as "
        "https://host[:port]"
    ),
    "targets:\n  prod:\n    url: https://x\n    org_id: o\n    user_id: u\n    timeout: .nan\n": (
        "gitsync.yaml:6:14: targets.prod.timeout: must be a number of seconds, above 0 and at "
        "most 86400"
    ),
    "targets:\n  no:\n    url: embedded\n": (
        "gitsync.yaml:2:3: targets.false: the target name no is read by YAML as false: quote "
        "it ('no':)"
    ),
    f"targets:\n  prod:\n    url: https://x\n   org_id: {CANARY}\n": (
        "gitsync.yaml:4:4: invalid YAML: while parsing a block mapping did not find expected key"
    ),
    f"targets:\n  prod: {{url: {CANARY}\n": (
        "gitsync.yaml:3:1: invalid YAML: while parsing a flow mapping did not find expected "
        "',' or '}'"
    ),
    # the rest of the format
    "targets: [1]\n": (
        "gitsync.yaml:1:10: targets: must be a mapping of target name to its settings"
    ),
    "targets:\n  p: {url: 'https://x'}\n": (
        "gitsync.yaml:2:6: targets.p: org_id and user_id are required for a remote target"
    ),
    f"targets:\n  p: {{url: 'https://x', org_id: o, user_id: u, secret_key: {CANARY}}}\n": (
        "gitsync.yaml:2:48: targets.p.secret_key: credentials do not belong in gitsync.yaml "
        "(it is committed): set ENOS_ACCESS_KEY and ENOS_SECRET_KEY, or name a file outside "
        "the repository with 'credentials:'"
    ),
    "flow: x\n": (
        "gitsync.yaml:1:1: flow: unknown key (known: flows, targets, vars); did you mean 'flows'?"
    ),
    "target:\n  p: {}\n": (
        "gitsync.yaml:1:1: target: unknown key (known: flows, targets, vars); "
        "did you mean 'targets'?"
    ),
    "targets:\n  p: {url: embedded, rot: x}\n": (
        "gitsync.yaml:2:22: targets.p.rot: unknown key (known: url, org_id, user_id, root, "
        "credentials, timeout, concurrency, retention, vars, name_prefix, name_suffix); "
        "did you mean 'root'?"
    ),
    "targets:\n  dev: {root: g, name_prefix: ''}\n  prod: {root: g}\n": (
        "gitsync.yaml:3:3: targets.prod: writes the same workflows as target 'dev' (same "
        "service, organization, root and names): each apply would undo the other's; give one "
        "a name_prefix or another root"
    ),
    "vars:\n  PW: ${env:DB_PASSWORD}\n": (
        "gitsync.yaml:2:7: vars.PW: a variable's value is inserted as it is, never read "
        "again: write the ${env:...} or ${var....} reference in the workflow file instead"
    ),
    "flows: ../../etc\n": (
        "gitsync.yaml:1:8: flows: must be a folder inside the repository (a relative path)"
    ),
    "flows: /etc\n": (
        "gitsync.yaml:1:8: flows: must be a folder inside the repository (a relative path)"
    ),
    "flows: 3\n": (
        "gitsync.yaml:1:8: flows: must be a folder inside the repository (a non-empty string; "
        "quote it if YAML reads it as another type)"
    ),
    "targets:\n  p: {url: embedded, root: ../x}\n": (
        "gitsync.yaml:2:28: targets.p.root: must be a directory path under 'Workflow' whose "
        "parts are names the service and the files accept (no '..', '\\' or control characters)"
    ),
    "targets:\n  p: {url: embedded, timeout: true}\n": (
        "gitsync.yaml:2:31: targets.p.timeout: must be a number of seconds, above 0 and at most "
        "86400"
    ),
    "targets:\n  p: {url: ftp://x, org_id: o, user_id: u}\n": (
        "gitsync.yaml:2:12: targets.p.url: must be 'embedded' or an address such as "
        "https://host[:port]"
    ),
    "targets:\n  p: {url: embedded, org_id: 5}\n": (
        "gitsync.yaml:2:30: targets.p.org_id: must be an id (a non-empty string; quote it if "
        "YAML reads it as another type)"
    ),
    "targets:\n  p:\n    url: embedded\n  p:\n    url: embedded\n": (
        "gitsync.yaml:4:3: duplicate key 'p' (first defined on line 2)"
    ),
    f"targets: !!binary {CANARY}\n": (
        "gitsync.yaml:1:10: cannot read value: tag:yaml.org,2002:binary"
    ),
    "- a\n- b\n": (
        "gitsync.yaml:1:1: expected a mapping with 'flows' and 'targets' at the top level"
    ),
    "\tflows: x\n": (
        "gitsync.yaml:1:1: invalid YAML: a tab character; YAML indentation must use spaces"
    ),
    "a: &x [*x]\n": "gitsync.yaml:1:4: nesting deeper than 64 levels",
    **{
        f"targets:\n  p: {{url: embedded, concurrency: {bad}}}\n": (
            "gitsync.yaml:2:35: targets.p.concurrency: must be a whole number "
            "of requests at once, from 1 to 64"
        )
        for bad in ("0", "-1", "65", "2.5", "true", "'8'", "~")
    },
}


@pytest.mark.parametrize("text", list(CASES))
def test_each_mistake_is_one_line_at_its_place(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "gitsync.yaml").write_text(text)
    result = run_cli("plan", "--target", "prod")
    assert result.exit_code == 1
    assert result.output == f"error: {CASES[text]}\n"
    assert CANARY not in result.output


def test_a_wrong_secret_from_a_file_names_the_file(tmp_path: Path) -> None:
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"access_key: k\nsecret_key: {CANARY}\n")
    (tmp_path / "gitsync.yaml").write_text(
        f"targets:\n  p: {{url: 'https://x', org_id: o, user_id: u, credentials: '{creds}'}}\n"
    )
    settings_ = config.load(tmp_path, {})
    assert settings_.credentials(settings_.target("p")) == ("k", CANARY, str(creds))
    creds.write_text(f"access_key: k\nsecret_key: [{CANARY}]\n")
    with pytest.raises(ConfigError) as raised:
        settings_.credentials(settings_.target("p"))
    assert str(raised.value) == (
        f"{creds}: expected a YAML file with access_key and secret_key (strings)"
    )
    creds.unlink()
    with pytest.raises(ConfigError) as raised:
        settings_.credentials(settings_.target("p"))
    assert str(raised.value) == f"{creds}: credentials file not found (the target's credentials)"
    creds.mkdir()
    with pytest.raises(ConfigError) as raised:
        settings_.credentials(settings_.target("p"))
    assert str(raised.value) == f"{creds}: a folder, not a credentials file"


# -- fuzz: any gitsync.yaml at all --------------------------------------------------------------

KEYS = [
    "flows",
    "targets",
    "url",
    "org_id",
    "user_id",
    "root",
    "credentials",
    "timeout",
    "concurrency",
    "no",
    "yes",
    "on",
    "null",
    "~",
    "1",
    "p",
    "secret_key",
    "<<",
]
ODD = [
    "no",
    "yes",
    "~",
    "null",
    ".nan",
    ".inf",
    "-.inf",
    "0x1F",
    "1e400",
    "'[::1'",
    "http://[::1",
    "https://x",
    "embedded",
    "../x",
    "/abs",
    "''",
    "|\n  block\n",
    "2024-01-01",
    "!!binary aGk=",
    "*a",
    "&a x",
    "{}",
    "[]",
    CANARY,
]


@st.composite
def yaml_value(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        return draw(st.sampled_from(ODD))
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    if draw(st.booleans()):
        inner = ", ".join(f"{k}: {draw(yaml_value(depth + 1))}" for k in keys)
        return "{" + inner.replace("\n", " ") + "}"
    return "[" + ", ".join(draw(st.sampled_from(ODD)) for _ in keys) + "]"


@settings(max_examples=300)
@given(
    top=st.lists(st.tuples(st.sampled_from(KEYS), yaml_value()), max_size=4),
    target=st.sampled_from(["local", "p", "no", "false"]),
)
def test_no_gitsync_yaml_gives_anything_but_a_result_or_one_config_error(
    top: list[tuple[str, str]], target: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("cfg")
    text = "".join(f"{k}: {v}\n" for k, v in top)
    (base / "gitsync.yaml").write_text(text)
    try:
        settings_ = config.load(base, {})
        chosen = settings_.target(target)
        settings_.credentials(chosen)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and CANARY not in message, message
        assert "gitsync.yaml" in message, message
        return
    assert isinstance(chosen, config.Target)
    assert chosen.url == "embedded" or chosen.url.startswith(("http://", "https://"))
    assert chosen.timeout > 0 and all(chosen.root)
    assert 1 <= chosen.concurrency <= 64
