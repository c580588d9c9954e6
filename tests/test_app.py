"""`sgvideo app`: the handlers with good and bad input, and the page in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sgvideo.app.handlers import ModelCache, edit_with_sound, read_sound, sound_to_video
from sgvideo.audio import AudioError, frame_count
from sgvideo.cli import main as cli_main
from sgvideo.inference.pipeline import SoundToVideo
from sgvideo.video_io import read_frames
from tests.test_generate import probe_streams, write_wav

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache("cpu")


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("app_sound") / "noise.wav", 1.3)


# ---------------------------------------------------------------------------- handlers


def test_sound_to_video_writes_the_mp4_and_a_strip_of_its_frames(
    models, trajectory_ckpt, sound, tmp_path
) -> None:
    video, frames = sound_to_video(models, tmp_path, sound, trajectory_ckpt, progress=False)
    pipeline = models.video(trajectory_ckpt)
    rate = pipeline.sample_rate  # fps None: the trajectory's training rate
    expected = frame_count(round(1.3 * rate), rate, pipeline.step_rate)
    assert len(read_frames(video)) == expected
    assert probe_streams(video)["audio_seconds"] == pytest.approx(1.3, abs=0.05)
    assert 1 <= len(frames) <= min(8, expected) and all(f.is_file() for f in frames)
    video12, frames12 = sound_to_video(
        models, tmp_path, sound, trajectory_ckpt, "seed", 3, fps=12, progress=False
    )
    assert len(read_frames(video12)) == 16 and len(frames12) == 8 and video12 != video


def test_models_load_once_per_checkpoint(models, trajectory_ckpt) -> None:
    assert models.video(trajectory_ckpt) is models.video(str(trajectory_ckpt))
    assert isinstance(models.video(trajectory_ckpt), SoundToVideo)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"audio": None}, "no sound"),
        ({"start": "image"}, "upload an image"),
        ({"start": "category"}, "name a category"),
        ({"start": "category", "category": "lava"}, "no start latent for category 'lava'"),
        ({"start": "seed", "seed": 1.5}, "whole number"),
        ({"start": "dream"}, "start must be one of"),
        ({"fps": 1000}, "--fps must be in"),
        ({"smoothing": 1.5}, "smoothing"),
    ],
)
def test_bad_generate_input_is_a_message(models, trajectory_ckpt, sound, tmp_path, kwargs, message):
    arguments = {"audio": sound, "checkpoint": trajectory_ckpt} | kwargs
    with pytest.raises(ValueError, match=message):
        sound_to_video(models, tmp_path, progress=False, **arguments)
    assert not list(tmp_path.rglob("*.mp4"))


def test_bad_sounds_and_checkpoints_are_messages(models, trajectory_ckpt, tmp_path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not a sound at all\n" * 100)
    empty = tmp_path / "empty.wav"
    empty.touch()
    for path in (text, empty):
        with pytest.raises(AudioError, match=path.name):
            read_sound(path)
    long = write_wav(tmp_path / "long.wav", 3.0)
    with pytest.raises(ValueError, match="lasts 3 s; the app takes at most 2 s"):
        read_sound(long, max_seconds=2)
    with pytest.raises(FileNotFoundError, match="stage-2 checkpoint not found.*make demo"):
        sound_to_video(models, tmp_path, long, tmp_path / "missing.ckpt")


def test_edit_with_a_sound_moves_only_the_chosen_groups(models, inversion_ckpt, sound) -> None:
    before, after = edit_with_sound(
        models, sound, inversion_ckpt, seed=2, groups=["fine"], strength=1.0, progress=False
    )
    assert before.shape == after.shape == (32, 32, 3) and before.dtype == np.uint8
    assert not np.array_equal(before, after)
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    projected, edited = edit_with_sound(
        models,
        sound,
        inversion_ckpt,
        image,
        project_steps=3,
        text="fire",
        mix=0.5,
        progress=False,
    )
    assert projected.shape == edited.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="style groups"):
        edit_with_sound(models, sound, inversion_ckpt, groups=[], progress=False)
    with pytest.raises(ValueError, match="mix must be in"):
        edit_with_sound(models, sound, inversion_ckpt, text="rain", mix=2.0, progress=False)


def test_user_errors_become_messages_in_the_page() -> None:
    gr = pytest.importorskip("gradio")
    from sgvideo.app.handlers import shown_in_page

    def bad(kind):
        raise {"user": ValueError("bad\nsound"), "bug": KeyError("x")}[kind]

    for kind, message in (("user", "bad sound"), ("bug", "internal error: KeyError: 'x'")):
        with pytest.raises(gr.Error) as caught:
            shown_in_page(bad)(kind)
        assert caught.value.message == message


def test_app_command_help(capsys) -> None:
    assert cli_main(["app", "--help"]) == 0
    assert "--host" in capsys.readouterr().out


# ---------------------------------------------------------------------------- in a browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "no headless Chromium: install Debian's chromium and chromium-driver packages "
            "(.ci/run does so when run as root)"
        )
    pytest.importorskip("gradio", reason="the app needs Gradio: pip install -e '.[app]'")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[app]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1700",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        # the page must work with the network off: every host but loopback is unreachable
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def test_app_in_a_browser_turns_an_uploaded_sound_into_a_video(
    browser, trajectory_ckpt, inversion_ckpt, sound, tmp_path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from sgvideo.app.page import build_app, launch

    started = time.monotonic()
    app = build_app(trajectory_ckpt, inversion_ckpt, tmp_path / "no-demo", tmp_path / "out")
    port = free_port()
    launch(app, port=port, block=False, quiet=True)
    try:
        origin = f"http://127.0.0.1:{port}"
        wait = WebDriverWait(browser, 60)

        def open_page_with(path: Path | None) -> None:
            browser.get(origin)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#generate"))
            if path is not None:
                browser.find_elements(By.CSS_SELECTOR, "input[type=file]")[0].send_keys(str(path))
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "audio, .waveform-container"))

        def message(text: str):
            toasts = "[data-testid=toast-body]"
            wait.until(
                lambda d: text in " ".join(t.text for t in d.find_elements(By.CSS_SELECTOR, toasts))
            )

        # no sound, then a file that is not a sound: messages in the page, the server goes on
        open_page_with(None)
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        message("no sound: upload or record one")
        garbage = tmp_path / "garbage.wav"
        garbage.write_bytes(b"RIFF" + os.urandom(4000))
        browser.find_elements(By.CSS_SELECTOR, "input[type=file]")[0].send_keys(str(garbage))
        time.sleep(0.5)
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        message("garbage.wav: ")
        # two tabs generating at once: both finish
        first = browser.current_window_handle
        open_page_with(sound)
        browser.switch_to.new_window("tab")
        open_page_with(sound)
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        browser.switch_to.window(first)
        browser.find_element(By.CSS_SELECTOR, "#generate").click()
        for tab in browser.window_handles:
            browser.switch_to.window(tab)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#frames img")) >= 4)
        player = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#video video[src]"))[0]
        src = player.get_attribute("src")
        assert src.startswith(origin)
        mp4 = tmp_path / "from_the_page.mp4"
        with urllib.request.urlopen(src, timeout=30) as response:
            mp4.write_bytes(response.read())
        pipeline = ModelCache().video(trajectory_ckpt)  # the training rate: the default fps
        assert len(read_frames(mp4)) == round(1.3 * pipeline.step_rate)
        assert probe_streams(mp4)["audio_seconds"] == pytest.approx(1.3, abs=0.05)
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        outside = [r for r in resources if not r.startswith((origin, "data:", "blob:"))]
        assert not outside, f"the page fetched from outside: {outside}"
        screenshot = tmp_path / "app.png"
        browser.save_screenshot(str(screenshot))
        if os.environ.get("SGVIDEO_APP_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["SGVIDEO_APP_SCREENSHOT"])
    finally:
        app.close()
    print(f"browser test: {time.monotonic() - started:.1f} s")
