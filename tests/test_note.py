"""Tests for ledger.note: signed notes, checkpoints and cosignatures."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ledger.errors import BadSignatureError, MalformedError
from ledger.merkle import EMPTY_ROOT
from ledger.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Checkpoint,
    CosignatureSigner,
    Ed25519Signer,
    Note,
    NoteVerifier,
    Signature,
    cosignature_message,
    cosignature_timestamp,
    key_id,
    open_note,
    parse_checkpoint,
    parse_note,
    release_gil_while_verifying,
)

STANDARDS = Path(__file__).resolve().parents[1].parent / "shared" / "standards"
EXAMPLE = STANDARDS / "tlog-tiles-example"
EXAMPLE_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
CHECKPOINT_FILES = [EXAMPLE / f"checkpoint.{n}" for n in range(16)] + [EXAMPLE / "checkpoint"]


def _verifier() -> NoteVerifier:
    return NoteVerifier.from_vkey(EXAMPLE_VKEY)


def test_example_vkey_parses() -> None:
    v = _verifier()
    assert v.name == "example.com/log/testdata"
    assert v.key_id == bytes.fromhex("33d7b496")
    assert v.sig_type == SIG_ED25519
    assert v.vkey() == EXAMPLE_VKEY


@pytest.mark.parametrize("path", CHECKPOINT_FILES, ids=lambda p: p.name)
def test_example_checkpoints_verify(path: Path) -> None:
    data = path.read_bytes()
    note = open_note(data, [_verifier()])
    assert note.encode().encode() == data
    cp = parse_checkpoint(note.text)
    assert cp.origin == "example.com/log/testdata"
    if path.name != "checkpoint":
        assert cp.size == int(path.name.split(".")[1])
    assert cp.to_text() == note.text
    if cp.size == 0:
        assert cp.root_hash == EMPTY_ROOT


@pytest.mark.parametrize("path", [EXAMPLE / "checkpoint.0", EXAMPLE / "checkpoint.7"], ids=lambda p: p.name)
def test_any_single_byte_change_is_rejected(path: Path) -> None:
    data = path.read_bytes()
    verifiers = [_verifier()]
    for i in range(len(data)):
        for delta in (0x01, 0x20, 0x80):
            bad = bytearray(data)
            bad[i] ^= delta
            with pytest.raises((BadSignatureError, MalformedError)):
                open_note(bytes(bad), verifiers)


def test_unknown_signatures_are_ignored() -> None:
    data = (EXAMPLE / "checkpoint.3").read_text()
    other = Ed25519Signer.generate("other.example/log")
    extra = other.signature(parse_note(data).text).to_line()
    # Same name as the trusted key but another key id: unknown, so ignored.
    impostor = Signature("example.com/log/testdata", b"\x00\x00\x00\x00", b"\x01" * 64).to_line()
    for noisy in (data + extra, data + impostor, data.replace("\n\n", "\n\n" + extra, 1)):
        note = open_note(noisy, [_verifier()])
        assert [s.name for s in note.signatures] == ["example.com/log/testdata"]
        assert len(parse_note(noisy).signatures) == 2


def test_no_trusted_signature_is_rejected() -> None:
    data = (EXAMPLE / "checkpoint.3").read_text()
    other = Ed25519Signer.generate("other.example/log")
    with pytest.raises(BadSignatureError):
        open_note(data, [other.verifier()])
    with pytest.raises(BadSignatureError):
        open_note(data, [])


def test_known_key_bad_signature_is_rejected_even_with_good_one() -> None:
    signer = Ed25519Signer.generate("log.example/a")
    text = "hello\n"
    good = signer.signature(text)
    bad = Signature(signer.name, signer.key_id, bytes(64))
    with pytest.raises(BadSignatureError):
        open_note(Note(text, (good, bad)).encode(), [signer.verifier()])


def test_signer_round_trip() -> None:
    signer = Ed25519Signer.generate("herbs.example/log")
    again = Ed25519Signer.from_private_bytes("herbs.example/log", signer.private_bytes())
    assert again.public_key() == signer.public_key()
    assert signer.key_id == key_id("herbs.example/log", SIG_ED25519, signer.public_key())
    vkey = signer.verifier_key()
    name, hex_id, b64 = vkey.split("+", 2)
    assert (name, hex_id) == ("herbs.example/log", signer.key_id.hex())
    assert base64.b64decode(b64) == b"\x01" + signer.public_key()
    v = NoteVerifier.from_vkey(vkey)
    text = Checkpoint("herbs.example/log", 5, b"\x07" * 32, ("ext line",)).to_text()
    signed = signer.sign_note(text)
    assert signed.startswith(text + "\n\u2014 herbs.example/log ")
    note = open_note(signed, [v])
    assert note.text == text
    assert parse_checkpoint(note.text).extensions == ("ext line",)
    assert v.verify(text.encode(), signer.sign(text.encode()))
    assert not v.verify(text.encode() + b"x", signer.sign(text.encode()))
    assert not v.verify(text.encode(), b"short")


@pytest.mark.parametrize(
    ("seed", "public", "message", "signature"),
    [  # RFC 8032 section 7.1, TEST 1 and TEST 2
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ],
)
def test_signer_signs_rfc8032_vectors_as_openssl_does(
    seed: str, public: str, message: str, signature: str
) -> None:
    signer = Ed25519Signer.from_private_bytes("rfc8032", bytes.fromhex(seed))
    msg = bytes.fromhex(message)
    assert signer.public_key().hex() == public
    assert signer.sign(msg).hex() == signature
    assert signer.sign(msg) == signer.private_key.sign(msg)  # libsodium and OpenSSL sign alike


def test_verification_holding_the_gil_decides_as_pynacl_does() -> None:
    signer = Ed25519Signer.generate("herbs.example/device")
    v = signer.verifier()
    text = b'{"v":1}\n'
    good = signer.sign(text)
    cases = [
        (text, good),
        (text + b"x", good),
        (text, good[:-1] + bytes([good[-1] ^ 1])),
        (text, good[:63]),
        (text, Ed25519Signer.generate("herbs.example/device").sign(text)),
    ]
    released = [v.verify(msg, sig) for msg, sig in cases]
    try:
        # libsodium's symbol is reachable in the PyNaCl we ship; the gateway's throughput relies on it.
        assert release_gil_while_verifying(False) is False
        held = [v.verify(msg, sig) for msg, sig in cases]
    finally:
        assert release_gil_while_verifying(True) is True
    assert released == held == [True, False, False, False, False]


def test_sign_note_requires_valid_text() -> None:
    signer = Ed25519Signer.generate("a.example")
    for text in ("no newline", "tab\there\n", ""):
        with pytest.raises(MalformedError):
            signer.sign_note(text)
    for name in ("", "has space", "plus+sign"):
        with pytest.raises(MalformedError):
            Ed25519Signer.generate(name)


def test_vkey_rejections() -> None:
    signer = Ed25519Signer.generate("herbs.example/log")
    name, hex_id, b64 = signer.verifier_key().split("+", 2)
    wrong_id = f"{int(hex_id, 16) ^ 1:08x}"
    with pytest.raises(MalformedError, match="does not match"):
        NoteVerifier.from_vkey(f"{name}+{wrong_id}+{b64}")
    # The example key under another name has a different key id.
    with pytest.raises(MalformedError):
        NoteVerifier.from_vkey(EXAMPLE_VKEY.replace("example.com", "example.org"))
    type2 = base64.b64encode(b"\x02" + signer.public_key()).decode()
    short = base64.b64encode(b"\x01" + signer.public_key()[:31]).decode()
    bad = [
        f"{name}+{hex_id}",
        f"{name}+{hex_id[:7]}+{b64}",
        f"{name}+{hex_id}+not base64!",
        f"{name}+{hex_id}+{type2}",
        f"{name}+{hex_id}+{short}",
        f"+{hex_id}+{b64}",
        f"{name}+zzzzzzzz+{b64}",
    ]
    for vkey in bad:
        with pytest.raises(MalformedError):
            NoteVerifier.from_vkey(vkey)


def test_parse_note_rejections() -> None:
    good = (EXAMPLE / "checkpoint.2").read_text()
    text, sigs = good.split("\n\n")
    line = sigs.rstrip("\n")
    cases = [
        text + "\n" + sigs,  # no blank line
        text + "\n\n",  # no signatures
        good[:-1],  # no final newline
        text + "\n\n" + line.replace("\u2014", "-") + "\n",  # ASCII dash
        text + "\n\n" + line.replace(" ", "  ", 1) + "\n",  # empty name
        text + "\n\n" + line.rsplit(" ", 1)[0] + " !!!!\n",  # bad base64
        text + "\n\n" + line.rsplit(" ", 1)[0] + " AAAAAA==\n",  # 4 bytes: key id only
        text + "\n\n" + line.rsplit(" ", 1)[0] + "\n",  # no signature
        text.replace("\n", "\r\n") + "\n\n" + sigs,  # control character
        text + "\n\n" + line + "\n" * 2,  # trailing blank line
        text + "\n\n" + (line + "\n") * 101,  # too many signatures
    ]
    for data in cases:
        with pytest.raises(MalformedError):
            parse_note(data)
    with pytest.raises(MalformedError):
        parse_note(good.encode() + b"\xff\n")
    assert len(parse_note(text + "\n\n" + (line + "\n") * 100).signatures) == 100
    # The text may contain blank lines; the last one separates the signatures.
    signer = Ed25519Signer.generate("a.example")
    note = parse_note(signer.sign_note("para one\n\npara two\n"))
    assert note.text == "para one\n\npara two\n"


def test_checkpoint_parsing() -> None:
    root = base64.b64encode(b"\x05" * 32).decode()
    assert parse_checkpoint(f"o\n0\n{root}\n") == Checkpoint("o", 0, b"\x05" * 32)
    assert parse_checkpoint(f"o\n12\n{root}\na\nb\n").extensions == ("a", "b")
    bad = [
        f"\n1\n{root}\n",
        f"o\n01\n{root}\n",
        f"o\n-1\n{root}\n",
        f"o\n+1\n{root}\n",
        f"o\n 1\n{root}\n",
        f"o\n1x\n{root}\n",
        f"o\n\u0661\n{root}\n",
        f"o\n1\n{base64.b64encode(b'x' * 31).decode()}\n",
        f"o\n1\n{root[:-1]}\n",
        f"o\n1\n{root}",
        "o\n1\n",
        f"o\n1\n{root}\n\n",
        f"o\n{1 << 64}\n{root}\n",
    ]
    for text in bad:
        with pytest.raises(MalformedError):
            parse_checkpoint(text)
    with pytest.raises(MalformedError):
        Checkpoint("o", 1, b"short")
    with pytest.raises(MalformedError):
        Checkpoint("", 1, b"\x00" * 32)


def test_cosignature_round_trip() -> None:
    log = Ed25519Signer.generate("herbs.example/log")
    witness = CosignatureSigner.generate("witness.example/w1")
    text = Checkpoint("herbs.example/log", 42, b"\x09" * 32).to_text()
    cosig = witness.cosign(text, 1_700_000_000)
    assert cosig.key_id == key_id(witness.name, SIG_COSIGNATURE_V1, witness.public_key())
    assert len(cosig.signature) == 72
    assert cosignature_timestamp(cosig) == 1_700_000_000
    assert cosignature_message(text, 5).decode() == "cosignature/v1\ntime 5\n" + text
    vkey = witness.verifier_key()
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == SIG_COSIGNATURE_V1
    wv = NoteVerifier.from_vkey(vkey)
    assert wv.sig_type == SIG_COSIGNATURE_V1
    note = Note(text, (log.signature(text), cosig))
    wire = note.encode()
    # A witness-only client, a log-only client and a client trusting both.
    assert open_note(wire, [wv]).signatures == (cosig,)
    assert open_note(wire, [log.verifier()]).signatures == (log.signature(text),)
    assert len(open_note(wire, [wv, log.verifier()]).signatures) == 2
    again = CosignatureSigner.from_private_bytes(witness.name, witness.private_bytes())
    assert again.verifier_key() == vkey
    # The same key as an Ed25519 note key has a different key id, so they never mix.
    assert Ed25519Signer(witness.name, witness.private_key).key_id != witness.key_id


def test_cosignature_tampering() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    wv = witness.verifier()
    text = Checkpoint("herbs.example/log", 42, b"\x09" * 32).to_text()
    cosig = witness.cosign(text, 1_700_000_000)
    later = (1_700_000_001).to_bytes(8, "big") + cosig.signature[8:]
    assert wv.verify(text.encode(), cosig.signature)
    assert not wv.verify(text.encode(), later)
    assert not wv.verify(text.replace("42", "43").encode(), cosig.signature)
    assert not wv.verify(text.encode(), cosig.signature[8:])
    with pytest.raises(BadSignatureError):
        open_note(Note(text, (Signature(cosig.name, cosig.key_id, later),)).encode(), [wv])
    with pytest.raises(MalformedError):
        witness.cosign(text, -1)
    with pytest.raises(MalformedError):
        witness.cosign(text, 1 << 63)
    with pytest.raises(MalformedError):
        witness.cosign("not a checkpoint\n", 1)
    with pytest.raises(MalformedError):
        cosignature_timestamp(Signature("x", b"\x00" * 4, b"\x00" * 64))
