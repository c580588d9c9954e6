"""Fuzzing `load_audio`: every broken file decodes to finite samples or is an AudioError naming it.

A few hundred small seeded files (random bytes; real WAV/FLAC/Ogg/MP3/mp4 headers followed by
garbage; truncations and bit flips of real files) go through `load_audio` in a child process
whose memory is capped (`tests.capped`) and whose every file has a time limit, so a blow-up or
a hang fails the test instead of the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from sgvideo.video_io import write_video
from tests.capped import run_capped

SEED = 13
SECONDS_PER_FILE = 10

CHILD = r"""
import json, signal
from sgvideo.audio import AudioError, load_audio


def too_slow(signum, frame):
    raise TimeoutError("no result in time")


signal.signal(signal.SIGALRM, too_slow)
results = {}
for path in sorted(Path(sys.argv[2]).iterdir()):
    signal.alarm(int(sys.argv[3]))
    try:
        wave = load_audio(path, 16000)
        results[path.name] = "finite" if bool(torch.isfinite(wave).all()) else "non-finite"
    except AudioError as error:
        results[path.name] = "named" if str(path) in str(error) else f"unnamed: {error}"
    except BaseException as error:
        results[path.name] = f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
print(json.dumps(results))
"""


def real_files(folder: Path, rng: np.random.Generator) -> dict[str, bytes]:
    """Short valid files of every container `load_audio` meets, as bytes."""
    wave = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    formats = {
        "pcm16.wav": ("WAV", "PCM_16", 16000),
        "float.wav": ("WAV", "FLOAT", 22050),
        "u8.wav": ("WAV", "PCM_U8", 8000),
        "sound.flac": ("FLAC", "PCM_16", 16000),
        "sound.ogg": ("OGG", "VORBIS", 22050),
        "sound.mp3": ("MP3", "MPEG_LAYER_III", 22050),
    }
    for name, (fmt, subtype, rate) in formats.items():
        sf.write(folder / name, wave, rate, format=fmt, subtype=subtype)
    frames = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    write_video(folder / "clip.mp4", frames, 10, audio=wave, sample_rate=16000)
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def fuzzed_files(real: dict[str, bytes], rng: np.random.Generator) -> dict[str, bytes]:
    """About 300 broken variants of `real` and random bytes, named by how they were made."""
    files = {}
    for i in range(40):
        files[f"random{i}.{rng.choice(['wav', 'mp3', 'ogg', 'flac', 'mp4', 'bin'])}"] = (
            rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        )
    for name, data in real.items():
        stem, suffix = name.rsplit(".", 1)
        for i in range(12):
            head = data[: int(rng.integers(4, 200))]
            garbage = rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8)
            files[f"{stem}_garbage{i}.{suffix}"] = head + garbage.tobytes()
        for i in range(12):
            files[f"{stem}_cut{i}.{suffix}"] = data[: int(rng.integers(0, len(data)))]
        for i in range(15):
            flipped = np.frombuffer(data, np.uint8).copy()
            where = rng.integers(0, len(data), int(rng.integers(1, 40)))
            flipped[where] ^= rng.integers(1, 256, len(where), dtype=np.uint8)
            files[f"{stem}_flip{i}.{suffix}"] = flipped.tobytes()
    return files


def test_broken_files_decode_or_raise_an_audio_error_naming_them(tmp_path) -> None:
    rng = np.random.default_rng(SEED)
    (tmp_path / "real").mkdir()
    fuzz = tmp_path / "fuzz"
    fuzz.mkdir()
    real = real_files(tmp_path / "real", rng)
    files = {**real, **fuzzed_files(real, rng)}
    for name, data in files.items():
        (fuzz / name).write_bytes(data)
    done = run_capped(CHILD, str(fuzz), str(SECONDS_PER_FILE), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    assert len(results) == len(files) >= 300
    bad = {name: outcome for name, outcome in results.items() if outcome not in {"finite", "named"}}
    assert not bad
    assert all(results[name] == "finite" for name in real)
    assert list(results.values()).count("named") > 50  # the broken files are mostly refused
    assert done.stderr == ""  # libav / libmpg123 complaints are silenced
