"""`LandscapeDataModule`: audio-visual clip windows of a folder (or CSV) of videos."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from sgvideo.audio import MelSettings
from sgvideo.data.cache import CachedClip, CacheSettings, entry_dir, read_meta
from sgvideo.data.dataset import ClipDataset
from sgvideo.data.index import (
    SPLITS,
    Clip,
    assign_splits,
    check_split_fractions,
    list_categories,
    load_index,
)
from sgvideo.data.prepare import prepare_dataset


class LandscapeDataModule(L.LightningDataModule):
    """Clip windows of landscape videos with their sound, from the prepared cache.

    Batches are dicts: `frames` "b t 3 h w" float in [-1, 1], `audio` "b t samples" (frame t's
    sound), `mel` "b t n_mels time" (log-mel of `audio`, in [0, 1]), `waveform` "b clip_samples"
    (the whole window's sound, clip_samples = round(clip_seconds * sample_rate)), `category`
    "b" long, `category_name` list[str], `path` list[str] (source files). Training draws a
    random window per clip and item; validation and test use each clip's centre window.
    See `sgvideo.data.dataset` for how frames and sound are aligned.

    Args:
        root: dataset folder laid out as `root/<category>/<clip>.mp4` (also mkv, webm, mov,
            avi; sub-folders inside a category are fine). Not scanned when `index_csv` is given.
        cache_dir: folder of the prepared cache (created by `prepare_data()` / `sgvideo prepare`).
        index_csv: optional CSV with columns path, category[, split] listing the clips instead
            of scanning `root`; relative paths are relative to the CSV's folder.
        image_size: frame size in pixels (frames are resized and centre-cropped to a square).
        num_frames: frames (and audio segments) per clip window.
        clip_seconds: length of a clip window in seconds; each frame's audio segment lasts
            clip_seconds / num_frames.
        mel: the sample rate (Hz) audio is decoded at and the log-mel settings of `mel`; the
            training stages link theirs from here.
        fps: frame rate of the cache; frames are picked from it at the segment centres.
        batch_size: clips per batch.
        num_workers: DataLoader worker processes (also the decoding processes of prepare).
        val_fraction: share of hashed clips in the validation split.
        test_fraction: share of hashed clips in the test split. Clips whose CSV row names a
            split keep it; the others are split by a hash of their path (stable when clips are
            added). With few clips (at least 3) every split with a positive fraction gets at
            least one clip.
        seed: seed of the split hash.
        hflip: mirror a training item's frames with probability 1/2.
    """

    def __init__(
        self,
        root: str,
        cache_dir: str,
        index_csv: str | None = None,
        image_size: int = 256,
        num_frames: int = 6,
        clip_seconds: float = 2.0,
        mel: MelSettings = MelSettings(),
        fps: float = 30.0,
        batch_size: int = 4,
        num_workers: int = 4,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        hflip: bool = False,
    ) -> None:
        super().__init__()
        positive = {"image_size": image_size, "num_frames": num_frames, "batch_size": batch_size}
        positive |= {"clip_seconds": clip_seconds, "fps": fps}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        check_split_fractions(val_fraction, test_fraction)
        self.mel_settings = MelSettings.of(mel)
        self.save_hyperparameters(ignore=["mel"])
        self.hparams["mel"] = self.mel_settings.as_dict()
        self.settings = CacheSettings(
            size=image_size, fps=float(fps), sample_rate=self.mel_settings.sample_rate
        )
        self.categories: list[str] = list_categories(root, index_csv)
        if not self.categories:
            raise ValueError(f"no clips found in {index_csv or root}")
        self.clips: dict[str, list[CachedClip]] = {}
        self.datasets: dict[str, ClipDataset] = {}

    def prepare_data(self) -> None:
        """Decode new or changed clips into the cache (Lightning calls this on rank 0 only)."""
        hp = self.hparams
        report = prepare_dataset(
            hp.root,
            hp.cache_dir,
            index_csv=hp.index_csv,
            size=hp.image_size,
            fps=hp.fps,
            sample_rate=self.mel_settings.sample_rate,
            workers=max(1, hp.num_workers),
        )
        (rank_zero_warn if report.skipped else rank_zero_info)(report.summary())

    def _cached(self, clips: list[Clip]) -> list[CachedClip]:
        """The clips that have a complete cache entry, with their labels."""
        label = {name: i for i, name in enumerate(self.categories)}
        cached = []
        for clip in clips:
            entry = entry_dir(self.hparams.cache_dir, self.settings, clip.key)
            meta = read_meta(entry)
            if meta is None:
                continue
            cached.append(
                CachedClip(
                    key=clip.key,
                    path=str(clip.path),
                    category=label[clip.category],
                    category_name=clip.category,
                    entry=entry,
                    num_frames=meta["num_frames"],
                    fps=meta["fps"],
                    sample_rate=meta["sample_rate"],
                    num_samples=meta["num_samples"],
                )
            )
        return cached

    def setup(self, stage: str | None = None) -> None:
        """Split the prepared clips and build the datasets.

        Clips missing from the cache (skipped by prepare) are left out before splitting.
        """
        if self.clips:
            return
        hp = self.hparams
        clips = load_index(hp.root, hp.index_csv)
        cached = {c.key: c for c in self._cached(clips)}
        usable = [clip for clip in clips if clip.key in cached]
        splits = assign_splits(usable, hp.val_fraction, hp.test_fraction, hp.seed)
        self.clips = {name: [cached[c.key] for c in split] for name, split in splits.items()}
        found = len(usable)
        if found == 0:
            raise FileNotFoundError(
                f"none of the {len(clips)} clips is prepared in {hp.cache_dir}; run "
                f"`sgvideo prepare --root {hp.root} --cache {hp.cache_dir} --size "
                f"{hp.image_size}` or call prepare_data() first"
            )
        if found < len(clips):
            rank_zero_warn(f"{len(clips) - found} of {len(clips)} clips are not in the cache")
        mel = self.mel_settings.log_mel()
        self.datasets = {
            name: ClipDataset(
                self.clips[name],
                hp.num_frames,
                hp.clip_seconds,
                mel,
                random_window=name == "train",
                hflip=hp.hflip and name == "train",
            )
            for name in SPLITS
        }

    def split_clips(self, split: str) -> list[CachedClip]:
        """The prepared clips of one split ("train", "val" or "test"), e.g. for evaluation."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.setup()
        return self.clips[split]

    def test_clips(self) -> list[CachedClip]:
        """The test split's clips (source path, label, cached frames and audio)."""
        return self.split_clips("test")

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"], shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["test"], shuffle=False)
