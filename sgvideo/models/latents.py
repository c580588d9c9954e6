"""W+ style groups: which latent layers are coarse, mid and fine."""

from __future__ import annotations

GROUP_NAMES = ("coarse", "mid", "fine")


def style_groups(n_latent: int) -> dict[str, slice]:
    """Split `n_latent` W+ layers into contiguous coarse / mid / fine slices.

    The paper's split for 256 px (14 layers) is 0-3 / 4-7 / 8-13; generators with 12 or more
    layers keep it. Smaller generators are cut into three near-equal parts so that every group
    has at least one layer.
    """
    if n_latent < 3:
        raise ValueError(f"need at least 3 W+ layers to form style groups, got {n_latent}")
    if n_latent >= 12:
        bounds = (0, 4, 8, n_latent)
    else:
        base, extra = divmod(n_latent, 3)
        sizes = [base + (1 if i < extra else 0) for i in range(3)]
        bounds = (0, sizes[0], sizes[0] + sizes[1], n_latent)
    return {name: slice(bounds[i], bounds[i + 1]) for i, name in enumerate(GROUP_NAMES)}


def parse_groups(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """'coarse,fine' or ['coarse', 'fine'] -> validated group names."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    unknown = [n for n in names if n not in GROUP_NAMES]
    if unknown or not names:
        raise ValueError(f"style groups must be among {GROUP_NAMES}, got {spec!r}")
    return names
