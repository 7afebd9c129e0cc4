"""The README and docs/ stay a guide whose links open: every relative link and #anchor resolves, and the README
stays short enough to read (the reference lives in docs/)."""

from __future__ import annotations

import subprocess
import sys

from synth_platform_tests.conftest import REPO


def test_every_relative_link_and_anchor_in_readme_and_docs_resolves():
    done = subprocess.run([sys.executable, str(REPO / "docs" / "check_links.py")], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_is_a_guide_of_at_most_250_lines():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, len(lines)
    headings = [line for line in lines if line.startswith("## ")]
    assert {"## Prerequisites", "## The two commands"} <= set(headings)
