"""The local socket bridge that serves tinct to GIMP (and any other client).

:mod:`~tinct.bridge.wire` is the wire format (framing, handshake, message
checks, ``bridge.json``) and its client (:mod:`~tinct.bridge.wire.client`); it
uses the standard library only, because ``tinct gimp install`` copies it next
to the GIMP plug-in (:mod:`~tinct.bridge.install`; the plug-in itself is package data in
``bridge/gimp_plugin/``). The server side is :mod:`~tinct.bridge.server`
(life cycle: binding, bridge.json, start and stop), :mod:`~tinct.bridge.serving`
(accepting connections and what they share: admission, running jobs),
:mod:`~tinct.bridge.connection` (one client), :mod:`~tinct.bridge.running_job` (a
``colorize`` job while it runs: progress, cancel) with
:mod:`~tinct.bridge.partial_frame` and :mod:`~tinct.bridge.job_warnings` (what the engine
warned about, for the result), :mod:`~tinct.bridge.request` (a ``colorize``
request in and out), :mod:`~tinct.bridge.backend` (what a job runs on the engine),
:mod:`~tinct.bridge.served_models` (which models, their weights) and
:mod:`~tinct.bridge.config` (where the server's address and token live).
"""
