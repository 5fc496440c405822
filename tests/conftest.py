"""The suite's servers: real gearmand processes from the project's own pytest plugin.

`gearmand` (one server for the session), `gearmand_factory` (servers of a
test's own, to stop, kill or restart, or several) and `gearmand_path` come
from ``pytest_gearman`` (bindings/pytest_gearman.py), as for any user of
``gearman.testing``. Without gearmand installed those tests are skipped,
except under CI (the ``CI`` environment variable set), where a missing
server is an error (the plugin's ``gearmand_missing = auto``).

The plugin's ``pytest11`` entry point registers it when the installed
distribution has the entry point; listing it here as well covers an older
(editable) install and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``. The entry point
bears the module's name, so pytest registers the plugin once either way
(tests/tools/test_pytest_plugin.py runs both cases).
"""

from __future__ import annotations

# The fault proxy (``fault_proxy``, tests/_faults.py) and TLS certificates with
# stunnel in front of gearmand (tests/_tls.py) are plugin modules of the suite.
pytest_plugins = ["pytest_gearman", "_faults", "_tls"]
