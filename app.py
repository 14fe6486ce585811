"""facedemo's dashboard. `python app.py` serves it on GRADIO_SERVER_PORT (default 7860).

Settings come from the environment (see README): FACEDEMO_GALLERY, FACEDEMO_PUBLIC, FACEDEMO_DEVICE,
FACEDEMO_MODEL, CHROMA_HOST/CHROMA_PORT, FACEDEMO_HOME. On Hugging Face Spaces (SPACE_ID is set) the
public demo mode is on by default: every visitor gets a private gallery.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from facedemo.services import Services  # noqa: E402
from facedemo.ui import CSS, build_app, theme, warm_up  # noqa: E402
from facedemo.ui.explore_tab import ExplorerState  # noqa: E402

services = Services()
explorer = ExplorerState()
demo = build_app(services, explorer)

if __name__ == "__main__":
    warm_up(services, explorer)
    settings = services.settings  # read from the environment once, in facedemo/settings.py
    demo.queue(default_concurrency_limit=settings.concurrency).launch(
        server_name=settings.server_name,
        theme=theme(),
        css=CSS,
    )
