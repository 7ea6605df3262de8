"""Make plugins/module_utils importable as ansible.module_utils.* and share test helpers.

Ansible itself finds these through ansible.cfg (module_utils = plugins/module_utils); under
pytest the package path of ansible.module_utils is extended instead, so the module and its
utils import exactly as they do when Ansible runs them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ansible.module_utils
import pytest

ROOT = Path(__file__).resolve().parents[3]
MODULE_UTILS = ROOT / "plugins" / "module_utils"

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))


from chaos_helpers import FakeClock, FakeSystemctl  # noqa: E402


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake_systemctl(clock):
    return FakeSystemctl(clock)


@pytest.fixture
def paths(tmp_path):
    return {
        "timeline_path": str(tmp_path / "timeline.jsonl"),
        "lock_path": str(tmp_path / "lock" / "chaos.lock"),
    }
