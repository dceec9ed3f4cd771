"""Kit-side tests of the lyra_isaac extension, run by Kit's test runner inside Isaac Sim 6.x::

    ./isaac-sim.sh --ext-folder <parent of the lyra_isaac checkout> --enable lyra_isaac \\
        --enable omni.kit.test --/exts/omni.kit.test/testExts/0='lyra_isaac' --/exts/omni.kit.test/runTestsAndQuit=true

They need Kit (omni.kit.test, omni.usd, pxr from Kit) and are not collected by pytest (no ``test_*.py`` files here);
the pytest suite in tests/ covers everything that runs without Kit.
"""

from .kit_tests import *  # noqa: F401,F403
