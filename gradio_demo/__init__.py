"""The Gradio demo: upload or record speech, see the emotion, its probabilities and a timeline.

One UI (`gradio_demo.app.build_demo`), two ways to run it:

* mounted on the BentoML service at ``/ui`` (`gradio_demo.mount.mount_demo`), calling the service's
  own methods in-process (`backends.InProcessBackend`), so it shares validation and batching;
* standalone against any running service: ``python -m gradio_demo --url http://HOST:3000``
  (`backends.RemoteBackend`, over `bentoml.SyncHTTPClient`).

Importing this package is cheap; Gradio and matplotlib are imported by the modules that need them.
"""
