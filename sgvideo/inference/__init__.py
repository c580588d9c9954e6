"""Inference shared by the tools (`generate`, `edit-*`, `project`, `evaluate`, the app).

- `pipeline`: the stage-2 pipeline (`SoundToVideo`: a waveform -> frame latents -> frames);
- `sound`: stage 1 at inference (`SoundInverter`: w_a = w_avg + E(log-mel)), latent smoothing;
- `latents`: seeded and CLIP-chosen start latents, rendering, group-restricted moves, files;
- `projection`: a real image -> W+;
- `editing`: sound-guided latent edits (`SoundEditor`, `EditSettings`);
- `media`: checked outputs, devices, seeded runs, images, GIFs, muxable audio.
"""
