"""The wheel's build hook: the request path's modules compiled to C extensions by mypyc.

Which modules is `[tool.hatch.build.targets.wheel.hooks.custom]` in pyproject.toml; hatch-mypyc
runs mypyc and the compiler and adds the extensions to the wheel (and, for an editable install,
beside the sources, where they are imported instead of the .py files until the next install).
Without a C compiler or Python's headers the build goes on as plain Python, so that installing
never needs more than Python: the code is the same, only slower. CERTCHECK_PURE_PYTHON=1 asks
for plain Python on purpose (a debugger, a profiler that shows our lines).
"""

from __future__ import annotations

import os
from typing import Any

import hatch_mypyc.plugin


class CompiledRequestPath(hatch_mypyc.plugin.MypycBuildHook):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("CERTCHECK_PURE_PYTHON"):
            self.clean([version])  # an earlier editable install's extensions would shadow the .py
            return
        try:
            super().initialize(version, build_data)
        except Exception as error:
            self.clean([version])
            first = str(error).strip().splitlines()[-1:] or ["unknown"]
            self.app.display_warning(
                f"certcheck: not compiled (plain Python instead): {first[0][:200]}"
            )


def get_build_hook() -> type[CompiledRequestPath]:
    return CompiledRequestPath
