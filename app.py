"""facedemo's dashboard. `python app.py` serves it on GRADIO_SERVER_PORT (default 7860).

Settings come from the environment (see README): FACEDEMO_GALLERY, FACEDEMO_PUBLIC, FACEDEMO_DEVICE,
FACEDEMO_MODEL, CHROMA_HOST/CHROMA_PORT, FACEDEMO_HOME. On Hugging Face Spaces (SPACE_ID is set) the
public demo mode is on by default: every visitor gets a private gallery.
"""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from facedemo.errors import FaceDemoError  # noqa: E402
from facedemo.services import Services  # noqa: E402
from facedemo.ui import build_app, launch_options, serve, warm_up  # noqa: E402
from facedemo.ui.explore_tab import ExplorerState  # noqa: E402

try:
    services = Services()  # reads the settings from the environment once, in facedemo/settings.py
    explorer = ExplorerState()
    demo = build_app(services, explorer)
except FaceDemoError as exc:  # a bad setting (FACEDEMO_MAX_PIXELS=abc): one line, as the CLI says it
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)

if __name__ == "__main__":
    warm_up(services, explorer)
    serve(demo, services, server_name=services.settings.server_name, **launch_options())
