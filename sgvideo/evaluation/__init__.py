"""The library behind `sgvideo evaluate` (sgvideo/evaluate.py is its front end).

settings  `EvaluationSettings`: every option, checked once
sets      the real and the generated videos, loaded lazily
networks  FID/FVD feature networks, CLIP-AV encoders, the frame judge
scoring   `Evaluation`: the real side scored once, then each generated set
protocol  the report: the values and every setting that changes them
run       `evaluate(settings)`, with the ablation table
"""

from sgvideo.evaluation.run import evaluate
from sgvideo.evaluation.settings import EvaluationError, EvaluationSettings

__all__ = ["EvaluationError", "EvaluationSettings", "evaluate"]
