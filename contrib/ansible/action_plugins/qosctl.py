# SPDX-License-Identifier: MIT OR Apache-2.0
"""Action plugin for the qosctl module: reads `src` on the controller (like `copy` does,
searching the role's or playbook's files/) and hands the module its text as `content`."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src = args.pop("src", None)
        if src is not None:
            if args.get("content") is not None:
                result.update(failed=True, msg="src and content are mutually exclusive")
                return result
            try:
                path = self._find_needle("files", src)
                with open(path, "rb") as f:
                    args["content"] = to_text(f.read())
            except (AnsibleError, OSError) as e:
                result.update(failed=True, msg="cannot read src %s: %s" % (src, e))
                return result
        result.update(
            self._execute_module(module_name="qosctl", module_args=args, task_vars=task_vars)
        )
        return result
