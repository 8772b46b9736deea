"""Training and evaluation: data sets, losses, the training loop, fine-tuning, evaluation.

:mod:`~tinct.training.datasets` (image folders and colour examples as
training pairs), :mod:`~tinct.training.losses`, :mod:`~tinct.training.train`
(the loop), :mod:`~tinct.training.checkpoint` (save and resume),
:mod:`~tinct.training.validation` (held-out PSNR during a run),
:mod:`~tinct.training.export` (weights files), :mod:`~tinct.training.finetuning`
(:func:`tinct.finetune` and :class:`tinct.FineTuneJob`),
:mod:`~tinct.training.adaptation` and :mod:`~tinct.training.colour_examples`
(adapting a model to the colours of examples), and
:mod:`~tinct.training.evaluate` (metrics over a data set through the engine).
"""
