"""An EMT source whose first task read dies once: the process is killed outright, as a node loss or the
OOM killer would, when the file named by $ATOMFORGE_TEST_FAIL_ONCE exists (it is removed first, so exactly
one read dies). Used as a `type: python` source; without the variable it is EMTSource."""
from __future__ import annotations

import os
import signal

from atomforge.data_prep.sources.emt import EMTSource


class FlakyEMT(EMTSource):
    def read(self, task):
        marker = os.environ.get("ATOMFORGE_TEST_FAIL_ONCE")
        if marker:
            try:
                os.unlink(marker)  # only one reader wins the unlink
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        yield from super().read(task)
