"""The colorization engine: from an image, hints and options to colour.

:mod:`~tinct.engine.colorizer` holds :class:`~tinct.engine.colorizer.Colorizer` and
:mod:`~tinct.engine.shared` the one colorizer cache and :func:`tinct.colorize`;
the stages it runs are modules of their own: reading and preparing inputs
(:mod:`~tinct.engine.inputs`, :mod:`~tinct.engine.imagefiles`, and
:mod:`~tinct.engine.contrast` for the warnings about poor inputs, and
:mod:`~tinct.engine.thread_warnings` for collecting a job's warnings), hints
(:mod:`~tinct.engine.hints`, :mod:`~tinct.engine.carry`), the options object
(:mod:`~tinct.engine.options`, :mod:`~tinct.engine.optionspec`), conditioning
and the network pass (:mod:`~tinct.engine.conditioning`,
:mod:`~tinct.engine.forward`), hint fusion (:mod:`~tinct.engine.fusion`,
:mod:`~tinct.engine.hint_decode`),
rendering at full resolution (:mod:`~tinct.engine.render`), devices and model
loading (:mod:`~tinct.engine.runtime`), CPU threads (:mod:`~tinct.engine.threads`),
and stacks, time-lapse and video (:mod:`~tinct.engine.temporal`,
:mod:`~tinct.engine.video`).

The engine imports the numerical core (``tinct.color``, ``tinct.decode``, ...)
and :mod:`tinct.models`; it never imports a front end.
"""
