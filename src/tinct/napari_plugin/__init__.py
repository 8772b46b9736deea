"""The napari plugin: the npe2 manifest (``napari.yaml``), dock widgets and sample data.

:mod:`~tinct.napari_plugin.widget` is the Colorize dock widget, built from
mix-ins (:mod:`~tinct.napari_plugin.models_panel`,
:mod:`~tinct.napari_plugin.options_panel`, :mod:`~tinct.napari_plugin.hints_panel`,
:mod:`~tinct.napari_plugin.server_panel`, :mod:`~tinct.napari_plugin.temporal_panel`)
over pure logic (:mod:`~tinct.napari_plugin.logic`, and what the progress bar says in
:mod:`~tinct.napari_plugin.progress`), layer I/O
(:mod:`~tinct.napari_plugin.layers`) and background jobs
(:mod:`~tinct.napari_plugin.jobs`). :mod:`~tinct.napari_plugin.train_widget` is
the Train dock widget and :mod:`~tinct.napari_plugin.samples` the sample data.
"""
