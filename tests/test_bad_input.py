"""Bad input to the tools: one line on stderr, exit code 2, nothing lost, no time wasted.

Every input and output is checked before a model loads, so most cases run with the model
loaders replaced by a function that fails the test, and with a checkpoint that does not exist.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from sgvideo.cli import main as cli_main
from sgvideo.edit import SoundEditor
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.video_io import write_video

RATE = 16000


def no_models(*args, **kwargs):
    raise AssertionError("a model was loaded before the input was checked")


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """A sound, a video with sound, two images; model loading fails the test."""
    monkeypatch.setattr(SoundToVideo, "from_checkpoint", no_models)
    monkeypatch.setattr(SoundEditor, "from_checkpoint", no_models)
    monkeypatch.setattr("sgvideo.edit.load_generator", no_models)
    rng = np.random.default_rng(0)
    wave = (0.2 * rng.standard_normal(RATE // 2)).astype(np.float32)
    sf.write(tmp_path / "sound.wav", wave, RATE)
    frames = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    write_video(tmp_path / "clip.mp4", frames, 8, audio=wave, sample_rate=RATE)
    Image.fromarray(frames[0]).save(tmp_path / "face.png")
    Image.fromarray(frames[1]).save(tmp_path / "face_strip.png")
    Image.fromarray(frames[2]).save(tmp_path / "start.gif")
    return {p.stem: p for p in tmp_path.iterdir()}


def contents(folder: Path) -> dict[str, str]:
    """Every file's path in `folder` -> hash of its bytes (hidden files included)."""
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def run_tool(argv: list[str], capsys) -> tuple[int, str]:
    code = cli_main([*argv, "--no-progress"])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, tool: str, message: str) -> None:
    assert code == 2
    assert err.startswith(f"sgvideo {tool}: error: ") and err.count("\n") == 1, err
    assert message in err, err


def generate_argv(audio: Path, out: str, *extra: str) -> list[str]:
    folder = audio.parent
    argv = ["generate", "--audio", str(audio), "--checkpoint", str(folder / "none.ckpt")]
    return [*argv, "--out", out, *extra]


def edit_image_argv(audio: Path, image: Path, out: Path) -> list[str]:
    argv = ["edit-image", "--image", str(image), "--audio", str(audio), "--out", str(out)]
    return [*argv, "--checkpoint", str(audio.parent / "none.ckpt")]


# ---------------------------------------------------------------------------- outputs = inputs


OVERWRITES = {
    "generate --out = --audio": lambda d: generate_argv(d["clip"], str(d["clip"])),
    "generate --out links to --audio": lambda d: generate_argv(d["clip"], str(d["link"])),
    "generate --gif = --image": lambda d: (
        generate_argv(d["sound"], str(d["sound"].with_name("o.mp4")), "--image", str(d["start"]))
        + ["--gif", str(d["start"])]
    ),
    "edit-image --out = --image": lambda d: edit_image_argv(d["sound"], d["face"], d["face"]),
    "edit-image strip = --image": lambda d: edit_image_argv(d["sound"], d["face_strip"], d["face"]),
    "edit-video --out = --video": lambda d: [
        *("edit-video", "--video", str(d["clip"]), "--audio", str(d["sound"])),
        *("--out", str(d["clip"]), "--checkpoint", str(d["sound"].with_name("none.ckpt"))),
    ],
    "project --preview = --image": lambda d: [
        *("project", "--image", str(d["face"]), "--generator", "none.pt"),
        *("--out", str(d["face"].with_name("w.pt")), "--preview", str(d["face"])),
    ],
}


@pytest.mark.parametrize("case", OVERWRITES)
def test_an_output_that_is_an_input_is_refused(inputs, tmp_path, capsys, case) -> None:
    (tmp_path / "link.mp4").symlink_to(inputs["clip"])
    inputs["link"] = tmp_path / "link.mp4"
    before = contents(tmp_path)
    argv = OVERWRITES[case](inputs)
    code, err = run_tool(argv, capsys)
    assert_one_line_error(code, err, argv[0], "it would be overwritten")
    assert contents(tmp_path) == before


# ---------------------------------------------------------------------------- generate


def huge_png(path: Path, side: int = 40000) -> Path:
    """A PNG header claiming side x side pixels (PIL refuses it before decoding anything)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def unknown_codec_wav(path: Path) -> Path:
    fmt = struct.pack("<HHIIHH", 0x1234, 1, RATE, 2 * RATE, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 800)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 800) + body + bytes(800))
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "/sys/x.mp4"], "cannot write --out /sys/x.mp4"),
        (["--out", "/proc/x.mp4"], "cannot write --out /proc/x.mp4"),
        (["--out", "{tmp}/folder.mp4"], "--out {tmp}/folder.mp4 is a folder"),
        (["--out", "{tmp}/o.mp4", "--frames-dir", "{tmp}/face.png"], "is a file, not a folder"),
        (["--out", "{tmp}/o.mp4", "--fps", "inf"], "--fps must be in (0, 240]"),
        (["--out", "{tmp}/o.mp4", "--fps", "nan"], "--fps must be in (0, 240]"),
        (["--out", "{tmp}/o.mp4", "--fps", "0"], "--fps must be in (0, 240]"),
        (["--out", "{tmp}/o.mp4", "--fps=-5"], "--fps must be in (0, 240]"),
        (["--out", "{tmp}/o.mp4", "--fps", "1e9"], "--fps must be in (0, 240]"),
        (["--out", "{tmp}/o.mp4", "--image", "{tmp}/huge.png"], "huge.png: the image is too large"),
        (["--out", "{tmp}/o.mp4", "--audio", "{tmp}/odd.wav"], "odd.wav: unknown audio codec"),
    ],
)
def test_generate_checks_everything_before_loading_models(
    inputs, tmp_path, capsys, extra, message
) -> None:
    (tmp_path / "folder.mp4").mkdir()
    huge_png(tmp_path / "huge.png")
    unknown_codec_wav(tmp_path / "odd.wav")
    before = contents(tmp_path)
    argv = ["generate", "--audio", str(inputs["sound"]), "--checkpoint", str(tmp_path / "none")]
    code, err = run_tool([*argv, *(arg.format(tmp=tmp_path) for arg in extra)], capsys)
    assert_one_line_error(code, err, "generate", message.format(tmp=tmp_path))
    assert "/." not in err  # names the user's path, never a hidden temporary file
    assert contents(tmp_path) == before


def test_fps_within_the_limit_gets_past_the_checks(inputs, tmp_path) -> None:
    argv = generate_argv(inputs["sound"], str(tmp_path / "o.mp4"), "--fps", "240")
    with pytest.raises(AssertionError, match="a model was loaded"):
        cli_main([*argv, "--frames-dir", str(tmp_path / "new" / "frames")])


@pytest.mark.parametrize(
    "checkpoint", [b"", b"this is a text file\n", b"\x80\x02garbage" * 50, "truncated"]
)
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, capsys, checkpoint) -> None:
    path = tmp_path / "model.ckpt"
    if checkpoint == "truncated":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:3000])
    else:
        path.write_bytes(checkpoint)
    sf.write(tmp_path / "sound.wav", np.zeros(RATE, np.float32), RATE)
    Image.new("RGB", (16, 16)).save(tmp_path / "face.png")
    before = contents(tmp_path)
    argv = generate_argv(tmp_path / "sound.wav", str(tmp_path / "o.mp4"))
    argv[argv.index("--checkpoint") + 1] = str(path)
    code, err = run_tool(argv, capsys)
    assert_one_line_error(code, err, "generate", f"cannot read {path} as a PyTorch checkpoint")
    argv = ["project", "--image", str(tmp_path / "face.png"), "--generator", str(path)]
    code, err = run_tool([*argv, "--out", str(tmp_path / "w.pt")], capsys)
    assert_one_line_error(code, err, "project", f"cannot read {path} as a PyTorch checkpoint")
    assert contents(tmp_path) == before


# ---------------------------------------------------------------------------- edit tools


@pytest.mark.parametrize(
    ("tool", "message"),
    [("edit-image", "huge.png: the image is too large"), ("project", "huge.png: the image")],
)
def test_edit_tools_refuse_a_decompression_bomb(inputs, tmp_path, capsys, tool, message) -> None:
    huge = huge_png(tmp_path / "huge.png")
    before = contents(tmp_path)
    if tool == "edit-image":
        argv = edit_image_argv(inputs["sound"], huge, tmp_path / "o.png")
    else:
        argv = ["project", "--image", str(huge), "--generator", "g.pt"]
        argv += ["--out", str(tmp_path / "w.pt")]
    code, err = run_tool(argv, capsys)
    assert_one_line_error(code, err, tool, message)
    assert contents(tmp_path) == before


def test_edit_tools_read_the_sound_before_loading_models(inputs, tmp_path, capsys) -> None:
    odd = unknown_codec_wav(tmp_path / "odd.wav")
    before = contents(tmp_path)
    code, err = run_tool(edit_image_argv(odd, inputs["face"], tmp_path / "o.png"), capsys)
    assert_one_line_error(code, err, "edit-image", f"{odd}: unknown audio codec")
    argv = ["edit-video", "--video", str(inputs["clip"]), "--audio", str(odd)]
    code, err = run_tool([*argv, "--out", str(tmp_path / "o.mp4"), "--checkpoint", "c"], capsys)
    assert_one_line_error(code, err, "edit-video", f"{odd}: unknown audio codec")
    assert contents(tmp_path) == before
