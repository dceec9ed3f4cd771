"""lyra_isaac inside Isaac Sim: the Kit extension and what it needs.

- :mod:`.importer` and :mod:`.robots` are UI-free and import without Kit (unit-tested with pytest).
- :mod:`.extension` is the Kit extension (menu, window, file picker, progress bar); it imports only inside
  Isaac Sim / Kit and raises one ImportError saying so elsewhere.
- :mod:`.tests` holds the Kit-side tests (``omni.kit.test``), run by Kit's test runner, never by pytest.

The Isaac Sim env backend lives in :mod:`lyra_isaac.envs.backends.isaacsim`.
"""

from __future__ import annotations
