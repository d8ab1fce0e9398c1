#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Ansible module: ship a qosctl policy and apply it (see DOCUMENTATION)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: qosctl
short_description: Ship a qosctl traffic-control policy to a host and apply it
description:
  - Writes the policy to O(dest) and runs C(qosctl apply), which changes only the
    qdiscs, classes and filters that differ from the policy, in one C(tc -batch),
    verifies the result and rolls back on failure.
  - The policy is validated and planned against the live kernel before O(dest) is
    replaced, so a broken policy never overwrites a working one on disk.
  - "C(changed) comes from qosctl's exit code (C(--detailed-exitcode)): 0 means in sync,
    2 means changes were pending (and, outside check mode, applied). A changed O(dest)
    also counts as a change."
  - A failure carries qosctl's own message (the policy's file, line and column, or the tc
    command that failed and the kernel's answer).
  - In check mode the module runs C(qosctl apply --dry-run) on a temporary copy and changes
    nothing. With C(--diff) it shows qosctl's plan and the policy file's diff.
version_added: "0.1.0"
author: qosctl contributors
options:
  content:
    description:
      - The policy text (TOML). Mutually exclusive with O(src).
    type: str
  src:
    description:
      - A policy file on the controller (searched like the C(copy) module's C(src), in
        the role's or playbook's C(files/)). The C(qosctl) action plugin next to this module
        reads it and passes its text as O(content).
      - Without the action plugin, a path on the managed host.
    type: path
  dest:
    description:
      - Where the policy is kept on the managed host.
    type: path
    default: /etc/qosctl/policy.toml
  netns:
    description:
      - Apply inside this network namespace (C(qosctl --netns)).
    type: str
  qosctl_path:
    description:
      - The qosctl binary. Default is C(qosctl) on the PATH, C(/usr/local/sbin) or C(/usr/sbin).
    type: path
  tc_path:
    description:
      - The tc binary qosctl runs (C(qosctl --tc)). Default is C(tc) on the PATH.
    type: path
notes:
  - Needs root on the managed host (C(become) true) unless O(netns) names a namespace the
    user may change.
  - Supports check mode and diff mode.
requirements:
  - qosctl on the managed host
"""

EXAMPLES = r"""
- name: Shape the uplink
  qosctl:
    src: policy.toml
    dest: /etc/qosctl/policy.toml
  become: true

- name: The same from inline text, inside a namespace
  qosctl:
    content: "{{ lookup('template', 'policy.toml.j2') }}"
    netns: lab1
"""

RETURN = r"""
plan:
  description: The plan qosctl printed (C(apply --dry-run)); empty lines when in sync.
  returned: always
  type: str
  sample: "a0 (up)\n  + qdisc 1: root  up  htb default e759\nPlan: 6 to add, 0 to change, 0 to remove."
stdout:
  description: What the final qosctl run printed (the dry run in check mode).
  returned: always
  type: str
policy_changed:
  description: Whether O(dest) differs (or differed) from the policy.
  returned: always
  type: bool
tc_changed:
  description: Whether the live traffic control differs (or differed) from the policy.
  returned: always
  type: bool
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule


def qosctl_base(module):
    p = module.params
    binary = p["qosctl_path"] or module.get_bin_path(
        "qosctl", required=True, opt_dirs=["/usr/local/sbin", "/usr/sbin"]
    )
    cmd = [binary]
    if p["netns"]:
        cmd += ["--netns", p["netns"]]
    if p["tc_path"]:
        cmd += ["--tc", p["tc_path"]]
    return cmd


def run_apply(module, cmd, cwd):
    """Runs qosctl; returns (changed, stdout); fails the task with qosctl's message."""
    rc, out, err = module.run_command(cmd, cwd=cwd)
    if rc not in (0, 2):
        module.fail_json(
            msg=(err.strip() or out.strip() or "qosctl exited %d" % rc),
            rc=rc,
            cmd=cmd,
            stdout=out,
            stderr=err,
        )
    return rc == 2, out


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            content=dict(type="str"),
            src=dict(type="path"),
            dest=dict(type="path", default="/etc/qosctl/policy.toml"),
            netns=dict(type="str"),
            qosctl_path=dict(type="path"),
            tc_path=dict(type="path"),
        ),
        mutually_exclusive=[("content", "src")],
        required_one_of=[("content", "src")],
        supports_check_mode=True,
    )
    p = module.params
    content = p["content"]
    if content is None:
        content = read(p["src"])
        if content is None:
            module.fail_json(msg="src %s: no such file on the managed host" % p["src"])
    dest = p["dest"]
    before = read(dest)
    policy_changed = before != content
    base = qosctl_base(module)

    # The dry run reads a copy named like dest, from its own directory, so qosctl's
    # messages say "policy.toml:3:8", not a temporary path.
    tmpdir = tempfile.mkdtemp(prefix="qosctl-")
    try:
        name = os.path.basename(dest) or "policy.toml"
        with open(os.path.join(tmpdir, name), "w", encoding="utf-8") as f:
            f.write(content)
        tc_changed, plan = run_apply(
            module, base + ["apply", name, "--dry-run", "--detailed-exitcode"], tmpdir
        )
        out = plan
        if not module.check_mode:
            if policy_changed:
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                module.atomic_move(os.path.join(tmpdir, name), dest)
            if tc_changed:
                _, out = run_apply(module, base + ["apply", dest, "--detailed-exitcode"], None)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)

    result = dict(
        changed=policy_changed or tc_changed,
        policy_changed=policy_changed,
        tc_changed=tc_changed,
        plan=plan,
        stdout=out,
    )
    if module._diff:
        result["diff"] = [
            dict(
                before_header=dest,
                after_header=dest,
                before=before or "",
                after=content,
            ),
            dict(prepared=plan if tc_changed else ""),
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
