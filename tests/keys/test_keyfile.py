"""Key files: encryption at rest, permissions, atomic writes, public key files."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from kpledger import keys
from kpledger.keys import (
    generate_key_file,
    load_key,
    load_public_key,
    passphrase_from_env,
    read_passphrase,
    save_key,
    write_private,
    write_public_key,
)
from kpledger.ledger.canonical import Tag, sha256
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import KeyFileError, LedgerError

PASSPHRASE = b"correct horse battery staple"
WRONG = b"Tr0ub4dor&3 not the one"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Ed25519Signer]:
    path = tmp_path / "node.key"
    signer = Ed25519Signer.generate()
    save_key(path, signer, PASSPHRASE)
    return path, signer


# --- RFC 8032 section 7.1 test vectors ------------------------------------------------
# (secret key, public key, message, signature), all hex, from RFC 8032 section 7.1
# "TEST 1" and "TEST 2" (Ed25519).
RFC8032_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="test1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="test2",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors(
    tmp_path: Path, secret: str, public: str, message: str, signature: str
) -> None:
    signer = Ed25519Signer.from_seed(bytes.fromhex(secret))
    assert signer.public.hex() == public
    assert signer.public.key_id == sha256(bytes.fromhex(public)).hex()
    msg = bytes.fromhex(message)
    sig = signer.private_key.sign(msg)
    assert sig.hex() == signature
    verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    verifier.verify(sig, msg)
    tampered = bytes([sig[0] ^ 1]) + sig[1:]
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, msg)
    # The vector key survives a trip through an encrypted key file unchanged.
    path = tmp_path / "vector.key"
    save_key(path, signer, PASSPHRASE)
    again = load_key(path, PASSPHRASE)
    assert again.public.hex() == public
    assert again.private_key.sign(msg).hex() == signature


# --- round trip -------------------------------------------------------------------------


def test_round_trip(saved: tuple[Path, Ed25519Signer]) -> None:
    path, signer = saved
    loaded = load_key(path, PASSPHRASE)
    assert loaded.public == signer.public
    sig = loaded.sign(Tag.SIG_RECORD, b"payload")
    signer.public.verify(Tag.SIG_RECORD, b"payload", sig)


def test_file_is_encrypted_pkcs8_pem(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    text = path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert PASSPHRASE.decode() not in text


def test_mode_is_0600_after_save(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    assert _mode(path) == 0o600


def test_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "umask0.key"
        generate_key_file(path, PASSPHRASE)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_created_0600_exclusively_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(file: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        calls.append((os.fspath(file), flags, mode))
        return real_open(file, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    generate_key_file(tmp_path / "spied.key", PASSPHRASE)
    creates = [call for call in calls if call[1] & os.O_CREAT]
    assert len(creates) == 1
    name, flags, mode = creates[0]
    assert Path(name).parent == tmp_path
    assert flags & os.O_EXCL
    assert mode == 0o600


def test_generate_key_file(tmp_path: Path) -> None:
    path = tmp_path / "gen.key"
    signer = generate_key_file(path, PASSPHRASE)
    assert load_key(path, PASSPHRASE).public == signer.public


def test_package_exports() -> None:
    assert set(keys.__all__) == {
        "generate_key_file",
        "load_key",
        "load_public_key",
        "passphrase_from_env",
        "read_passphrase",
        "save_key",
        "write_private",
        "write_public_key",
    }


def test_private_files_are_owner_only_whatever_the_umask_and_never_overwritten(
    tmp_path: Path,
) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "secrets.toml", '[BW]\npassphrase = "x"\n', what="secrets")
    finally:
        os.umask(old)
    path = tmp_path / "secrets.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == '[BW]\npassphrase = "x"\n'
    with pytest.raises(KeyFileError, match="private file already exists"):
        write_private(path, b"other")
    assert path.read_text() == '[BW]\npassphrase = "x"\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secrets.toml"]  # no temporary left


# --- refusals on load -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610, 0o666])
def test_open_permissions_refused_with_chmod_hint(
    saved: tuple[Path, Ed25519Signer], mode: int
) -> None:
    path, _ = saved
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_key(path, PASSPHRASE)
    message = str(info.value)
    assert f"permissions {mode:04o} are too open; run chmod 600 {path}" in message
    assert info.value.path == str(path)


def test_owner_only_modes_load(saved: tuple[Path, Ed25519Signer]) -> None:
    path, signer = saved
    for mode in (0o400, 0o600, 0o700):
        path.chmod(mode)
        assert load_key(path, PASSPHRASE).public == signer.public


def test_missing_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError, match="not found") as info:
        load_key(path, PASSPHRASE)
    assert info.value.path == str(path)


def test_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(tmp_path, PASSPHRASE)


def test_wrong_passphrase_refused_without_echoing_it(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    with pytest.raises(KeyFileError, match="wrong passphrase or corrupted key file") as info:
        load_key(path, WRONG)
    exc: BaseException | None = info.value
    while exc is not None:  # neither the error nor anything it chains names a passphrase
        for secret in (WRONG, PASSPHRASE):
            assert secret.decode() not in str(exc)
            assert secret.decode() not in repr(exc)
        exc = exc.__cause__ or exc.__context__
    assert isinstance(info.value, LedgerError)
    assert isinstance(info.value.__cause__, ValueError)


def test_empty_passphrase_refused_on_load(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    with pytest.raises(KeyFileError, match="empty passphrase"):
        load_key(path, b"")


def test_truncated_file_refused(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 40, 40):
        _write_private(path, data[:cut])
        with pytest.raises(KeyFileError):
            load_key(path, PASSPHRASE)


def test_corrupted_body_refused(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    lines = path.read_bytes().split(b"\n")
    body = bytearray(lines[1])
    body[10] = ord("A") if body[10] != ord("A") else ord("B")
    lines[1] = bytes(body)
    _write_private(path, b"\n".join(lines))
    with pytest.raises(KeyFileError):
        load_key(path, PASSPHRASE)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage that is not a key\n", os.urandom(300), b'{"key": "not pem"}\n'],
    ids=["empty", "text", "random", "json"],
)
def test_garbage_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.key"
    _write_private(path, data)
    with pytest.raises(KeyFileError, match="not a PEM key file"):
        load_key(path, PASSPHRASE)


def test_unencrypted_pkcs8_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.key"
    signer = Ed25519Signer.generate()
    _write_private(
        path,
        signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    )
    with pytest.raises(KeyFileError, match="not encrypted"):
        load_key(path, PASSPHRASE)


def test_public_key_pem_refused(tmp_path: Path) -> None:
    path = tmp_path / "pub.pem"
    signer = Ed25519Signer.generate()
    pem = signer.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    _write_private(path, pem)
    with pytest.raises(KeyFileError, match="found 'BEGIN PUBLIC KEY'"):
        load_key(path, PASSPHRASE)


def _other_keys() -> list[Any]:
    return [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), "RSA", id="rsa"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), "EC", id="ec"),
        pytest.param(ed448.Ed448PrivateKey.generate, "Ed448", id="ed448"),
    ]


@pytest.mark.parametrize(("make", "kind"), _other_keys())
def test_other_key_types_refused(tmp_path: Path, make: Any, kind: str) -> None:
    key: PrivateKeyTypes = make()
    path = tmp_path / "other.key"
    _write_private(
        path,
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(PASSPHRASE)),
    )
    with pytest.raises(KeyFileError, match=f"not an Ed25519 key \\(key type: {kind}\\)"):
        load_key(path, PASSPHRASE)


def test_traditional_openssl_format_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "legacy.key"
    _write_private(
        path,
        key.private_bytes(
            Encoding.PEM,
            PrivateFormat.TraditionalOpenSSL,
            BestAvailableEncryption(PASSPHRASE),
        ),
    )
    with pytest.raises(KeyFileError, match="expected an encrypted PKCS#8 key"):
        load_key(path, PASSPHRASE)


def test_oversized_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.key"
    _write_private(path, b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + b"A" * 70_000)
    with pytest.raises(KeyFileError, match="too large"):
        load_key(path, PASSPHRASE)


# --- refusals and failures on save -------------------------------------------------------


def test_empty_passphrase_refused_on_save(tmp_path: Path) -> None:
    path = tmp_path / "empty-pass.key"
    with pytest.raises(KeyFileError, match="empty passphrase"):
        save_key(path, Ed25519Signer.generate(), b"")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_refused(saved: tuple[Path, Ed25519Signer]) -> None:
    path, signer = saved
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite"):
        save_key(path, Ed25519Signer.generate(), PASSPHRASE)
    assert path.read_bytes() == before
    assert load_key(path, PASSPHRASE).public == signer.public
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_overwrite_refused_when_file_appears_during_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final no-clobber step holds even if the early existence check is passed."""
    path = tmp_path / "race.key"
    real_fsync = os.fsync

    def other_process_wins(fd: int) -> None:
        real_fsync(fd)
        if not path.exists():
            path.write_bytes(b"someone else's key")

    monkeypatch.setattr(os, "fsync", other_process_wins)
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(path, Ed25519Signer.generate(), PASSPHRASE)
    assert path.read_bytes() == b"someone else's key"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_overwrite_allowed_when_asked(saved: tuple[Path, Ed25519Signer]) -> None:
    path, _ = saved
    replacement = Ed25519Signer.generate()
    save_key(path, replacement, WRONG, overwrite=True)
    assert load_key(path, WRONG).public == replacement.public
    assert _mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_failed_replace_leaves_old_file_and_no_temp(
    saved: tuple[Path, Ed25519Signer], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, signer = saved
    before = path.read_bytes()

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyFileError, match="cannot write key file") as info:
        save_key(path, Ed25519Signer.generate(), PASSPHRASE, overwrite=True)
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert path.read_bytes() == before
    assert load_key(path, PASSPHRASE).public == signer.public


@pytest.mark.parametrize("target", ["fsync", "link"])
def test_failed_new_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, target, boom)
    with pytest.raises(KeyFileError, match="cannot write key file"):
        save_key(tmp_path / "new.key", Ed25519Signer.generate(), PASSPHRASE)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_no_hard_links_falls_back_to_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "fallback.key"
    signer = generate_key_file(path, PASSPHRASE)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert load_key(path, PASSPHRASE).public == signer.public
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(path, Ed25519Signer.generate(), PASSPHRASE)


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_key(tmp_path / "ctrl-c.key", Ed25519Signer.generate(), PASSPHRASE)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores directory permissions",
)
def test_read_only_directory_refused_cleanly(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(KeyFileError, match="cannot write key file"):
            save_key(directory / "k.key", Ed25519Signer.generate(), PASSPHRASE)
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o700)


def test_missing_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write key file"):
        save_key(tmp_path / "no" / "such.key", Ed25519Signer.generate(), PASSPHRASE)


# --- passphrases ---------------------------------------------------------------------------

VAR = "KPL_TEST_KEY_PASSPHRASE"


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "s3cret päss")
    assert passphrase_from_env(VAR) == "s3cret päss".encode()


def test_passphrase_from_env_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    with pytest.raises(KeyFileError, match=f"{VAR} is not set"):
        passphrase_from_env(VAR)
    monkeypatch.setenv(VAR, "")
    with pytest.raises(KeyFileError, match=f"{VAR} is empty"):
        passphrase_from_env(VAR)


def test_env_passphrase_unlocks_key(
    saved: tuple[Path, Ed25519Signer], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, signer = saved
    monkeypatch.setenv(VAR, PASSPHRASE.decode())
    assert load_key(path, passphrase_from_env(VAR)).public == signer.public


class _FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _no_prompt(_prompt: str = "") -> str:
    raise AssertionError("must not prompt")


def test_read_passphrase_prefers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "from-env")
    monkeypatch.setattr(sys, "stdin", _FakeTty())
    monkeypatch.setattr("getpass.getpass", _no_prompt)
    assert read_passphrase(VAR, prompt="Passphrase: ") == b"from-env"


def test_read_passphrase_without_tty_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "")
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr("getpass.getpass", _no_prompt)
    with pytest.raises(KeyFileError, match=f"set the environment variable {VAR}"):
        read_passphrase(VAR, prompt="Passphrase: ")
    with pytest.raises(KeyFileError, match="not a terminal"):
        read_passphrase(None, prompt="Passphrase: ")


def test_read_passphrase_prompts_on_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.setattr(sys, "stdin", _FakeTty())
    answers = iter(["typed pass", "typed pass"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert read_passphrase(VAR, prompt="Key passphrase: ", confirm=True) == b"typed pass"
    assert prompts[0] == "Key passphrase: "
    assert len(prompts) == 2


@pytest.mark.parametrize(
    ("answers", "message"),
    [(["a", "b"], "do not match"), ([""], "empty passphrase")],
    ids=["mismatch", "empty"],
)
def test_read_passphrase_refuses_bad_typing(
    monkeypatch: pytest.MonkeyPatch, answers: list[str], message: str
) -> None:
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.setattr(sys, "stdin", _FakeTty())
    it = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(it))
    with pytest.raises(KeyFileError, match=message):
        read_passphrase(VAR, prompt="Passphrase: ", confirm=True)


# --- public key files -------------------------------------------------------------------


def test_public_key_round_trip(tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    path = tmp_path / "node.pub"
    write_public_key(path, signer.public)
    assert load_public_key(path) == signer.public
    document = json.loads(path.read_bytes())
    assert document == {
        "algorithm": "ed25519",
        "key": signer.public.hex(),
        "key_id": signer.public.key_id,
    }
    assert path.read_bytes() == (
        b'{"algorithm":"ed25519","key":"%s","key_id":"%s"}\n'
        % (signer.public.hex().encode(), signer.public.key_id.encode())
    )
    assert _mode(path) == 0o644


def test_public_key_file_may_be_world_readable_and_pretty(tmp_path: Path) -> None:
    signer = Ed25519Signer.generate()
    path = tmp_path / "pretty.pub"
    document = {"key_id": signer.public.key_id, "algorithm": "ed25519", "key": signer.public.hex()}
    path.write_text(json.dumps(document, indent=2))
    path.chmod(0o644)
    assert load_public_key(path) == signer.public


def test_public_key_overwrite_refused_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "node.pub"
    first, second = Ed25519Signer.generate(), Ed25519Signer.generate()
    write_public_key(path, first.public)
    with pytest.raises(KeyFileError, match="already exists"):
        write_public_key(path, second.public)
    assert load_public_key(path) == first.public
    write_public_key(path, second.public, overwrite=True)
    assert load_public_key(path) == second.public


def test_public_key_id_mismatch_refused(tmp_path: Path) -> None:
    signer, other = Ed25519Signer.generate(), Ed25519Signer.generate()
    path = tmp_path / "bad.pub"
    path.write_text(
        json.dumps(
            {"algorithm": "ed25519", "key": signer.public.hex(), "key_id": other.public.key_id}
        )
    )
    with pytest.raises(KeyFileError, match="does not match the key") as info:
        load_public_key(path)
    assert signer.public.key_id in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"algorithm": "ed25519"}', "lacks key, key_id"),
        (None, "unknown fields extra"),
        ("algorithm", "algorithm must be 'ed25519'"),
        ("short-key", "bad public key"),
        ("duplicate", "repeats the field 'key_id'"),
    ],
)
def test_bad_public_key_files_refused(tmp_path: Path, document: str | None, message: str) -> None:
    signer = Ed25519Signer.generate()
    good = {"algorithm": "ed25519", "key": signer.public.hex(), "key_id": signer.public.key_id}
    if document is None:
        text = json.dumps({**good, "extra": 1})
    elif document == "algorithm":
        text = json.dumps({**good, "algorithm": "rsa"})
    elif document == "short-key":
        text = json.dumps({**good, "key": "abcd"})
    elif document == "duplicate":
        text = json.dumps(good)[:-1] + f', "key_id": "{signer.public.key_id}"}}'
    else:
        text = document
    path = tmp_path / "x.pub"
    path.write_text(text)
    with pytest.raises(KeyFileError, match=message):
        load_public_key(path)


def test_missing_public_key_file_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="public key file not found"):
        load_public_key(tmp_path / "nope.pub")
