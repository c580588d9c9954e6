"""sgvideo: sound-guided semantic video generation on PyTorch Lightning."""

__version__ = "0.1.0"
