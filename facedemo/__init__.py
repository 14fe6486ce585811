"""facedemo: see how a face-recognition model behaves.

The core (images, detection, alignment, models, pipeline, gallery, metrics, figures) never imports
gradio; the dashboard in ``facedemo.ui`` is a thin layer over it.
"""

__version__ = "0.1.0"
