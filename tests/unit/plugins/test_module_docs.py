"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, as ansible-doc needs them to."""

from __future__ import annotations

import ast

import pytest
import yaml
from chaos_helpers import MODULES

BLOCKS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.py")), ids=lambda p: p.stem)
def test_module_documentation_parses(path):
    tree = ast.parse(path.read_text())
    found = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in BLOCKS
    }
    assert set(found) == set(BLOCKS), f"{path.name} lacks {set(BLOCKS) - set(found)}"
    doc = yaml.safe_load(found["DOCUMENTATION"])
    assert doc["module"] == path.stem and doc["short_description"]
    assert isinstance(yaml.safe_load(found["EXAMPLES"]), list)
    assert isinstance(yaml.safe_load(found["RETURN"]), dict)
